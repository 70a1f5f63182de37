"""A streaming response that always runs its close callback, whenever the client leaves.

Starlette cancels a StreamingResponse when the client disconnects; if that
happens before the body iterator first runs (the client left while the proxy
waited for the provider's first token), the iterator's `finally` never runs.
The AI proxy uses the callback to settle the call as interrupted then.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, Awaitable, Callable, Mapping
from typing import Any

import anyio
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send


class SettlingStream(StreamingResponse):
    def __init__(
        self,
        content: AsyncIterable[bytes],
        on_close: Callable[[], Awaitable[Any]],
        *,
        media_type: str,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(content, media_type=media_type, headers=headers)
        self.on_close = on_close

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            with anyio.CancelScope(shield=True):
                aclose = getattr(self.body_iterator, "aclose", None)
                if aclose is not None:
                    await aclose()
                await self.on_close()
