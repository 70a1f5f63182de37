"""Deliver operator messages: a Slack-compatible incoming webhook, or the log when none is set.

A message is Slack's JSON ({"text": ..., "blocks": [...]}); `text` alone is what
plain receivers and notifications show, so it always carries the whole news.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Protocol

from workers.errors import BacklineError
from workers.settings import Settings

log = logging.getLogger("backline.alerts")


@dataclass(frozen=True)
class Message:
    text: str
    blocks: list[dict[str, Any]] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {"text": self.text, "blocks": self.blocks} if self.blocks else {"text": self.text}


class DeliveryError(BacklineError):
    """The webhook did not accept a message (unreachable, timeout, non-2xx)."""


class Channel(Protocol):
    """Where alerts, recoveries and reports go. `name` says which, for job results and logs."""

    name: str

    def send(self, message: Message) -> None: ...


class WebhookChannel:
    """POSTs each message as JSON; any answer but 2xx is a DeliveryError (the caller retries later)."""

    name = "webhook"

    def __init__(self, url: str, timeout: float) -> None:
        self._url = url
        self._timeout = timeout

    def send(self, message: Message) -> None:
        import httpx

        try:
            response = httpx.post(self._url, json=message.as_json(), timeout=self._timeout)
        except httpx.HTTPError as exc:
            # Never the URL itself: an incoming webhook's path is its secret.
            raise DeliveryError(f"alert webhook unreachable: {type(exc).__name__}: {exc}") from None
        if not 200 <= response.status_code < 300:
            raise DeliveryError(
                f"alert webhook answered HTTP {response.status_code}: {response.text.strip()[:200]}"
            )


class LogChannel:
    """No webhook configured: each message is one WARNING line of the process log."""

    name = "log"

    def send(self, message: Message) -> None:
        log.warning("%s", message.text)


def channel_for(settings: Settings) -> Channel:
    if settings.alert_webhook_url:
        return WebhookChannel(settings.alert_webhook_url, settings.alert_webhook_timeout_seconds)
    return LogChannel()
