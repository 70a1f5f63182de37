"""Provider adapters, each speaking its provider's real wire format."""

from __future__ import annotations

from workers.ai.providers.anthropic import AnthropicProvider
from workers.ai.providers.base import MODEL_MAX_LEN, Provider, model_error
from workers.ai.providers.gemini import GeminiProvider
from workers.ai.providers.openai_compat import OpenAICompatProvider

PROVIDER_NAMES = ("openai", "openai_compat", "anthropic", "gemini")


def make_provider(name: str, base_url: str) -> Provider:
    if name in ("openai", "openai_compat"):
        return OpenAICompatProvider(name, base_url)
    if name == "anthropic":
        return AnthropicProvider(name, base_url)
    if name == "gemini":
        return GeminiProvider(name, base_url)
    raise ValueError(f"unknown provider {name!r}")


__all__ = ["MODEL_MAX_LEN", "PROVIDER_NAMES", "Provider", "make_provider", "model_error"]
