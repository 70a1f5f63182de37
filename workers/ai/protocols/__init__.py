"""Wire-format adapters of the SDK-compatible routes (OpenAI, Anthropic, Gemini)."""
