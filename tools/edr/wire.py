"""Reading scalar values out of vendor JSON rows, which carry numbers as strings, nulls and the
odd nested object where a value was expected: never raise, bound every string."""

from __future__ import annotations

from typing import Any


def wire_text(value: Any, limit: int = 1_024) -> str | None:
    if value is None or isinstance(value, bool | dict | list):
        return None
    text = str(value).strip()
    return text[:limit] if text else None


def wire_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return None
