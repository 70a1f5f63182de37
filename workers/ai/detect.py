"""Image detection: each image -> a vision call asking for JSON items with confidence."""

from __future__ import annotations

import json
import time
from typing import Any

from workers.ai.auth import Caller
from workers.ai.service import AIService, CallSpec, Target, elapsed_ms

INSTRUCTIONS = (
    'Answer only with JSON: {"items": [{"name": string, "confidence": number between 0 and 1, '
    '"category": string or null}]}.'
)


def parse_items(text: str) -> list[dict[str, Any]]:
    """The items from a model's JSON answer (tolerates code fences and prose around it)."""
    start, end = text.find("{"), text.rfind("}")
    if start < 0 or end <= start:
        return []
    try:
        data = json.loads(text[start : end + 1])
    except ValueError:
        return []
    items = data.get("items") if isinstance(data, dict) else None
    out = []
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            continue
        conf = item.get("confidence")
        confidence = min(max(float(conf), 0.0), 1.0) if isinstance(conf, (int, float)) else None
        category = item.get("category")
        out.append(
            {
                "name": item["name"][:200],
                "confidence": confidence,
                "category": category[:100] if isinstance(category, str) else None,
            }
        )
    return out


async def detect_images(
    svc: AIService, caller: Caller, target: Target, prompt: str, images: list[dict[str, str]]
) -> list[dict[str, Any]]:
    """One provider call per image (each counts against the rate limit)."""
    results = []
    for index, image in enumerate(images):
        started = time.perf_counter()
        messages = [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": f"{prompt}\n\n{INSTRUCTIONS}"},
                    {"type": "image", "mime_type": image["mime_type"], "data": image["data"]},
                ],
            }
        ]
        result = await svc.complete(
            caller, CallSpec(target, messages, 1024, 0.0, endpoint="detect", images=1)
        )
        results.append(
            {
                "image": index,
                "items": parse_items(result.text),
                "provider": result.provider,
                "model": result.model,
                "usage_id": result.usage_id,
                "fallback_used": result.fallback_used,
                "processing_ms": elapsed_ms(started),
            }
        )
    return results
