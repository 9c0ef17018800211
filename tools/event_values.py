"""Field values of raw events as the typed results take them: text trimmed, with the empty
spellings of every source (`-`, `(empty)`, `null`) as none; numbers decimal or hex; times as
aware datetimes; process GUIDs and SHA256 digests normalised; `Subject`/`Target` accounts as
`DOMAIN\\user`. Each returns None for what it cannot read, never raises.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

_SHORT = 1_024
_LONG = 16_384
_EMPTY = {"", "-", "(empty)", "null", "none"}


def text_value(value: Any) -> str | None:
    if value is None or isinstance(value, bool | Mapping | list):
        return None
    text = str(value).strip()
    return None if text.lower() in _EMPTY else text


def short_value(value: Any) -> str | None:
    text = text_value(value)
    return text[:_SHORT] if text else None


def long_value(value: Any) -> str | None:
    text = text_value(value)
    return text[:_LONG] if text else None


def int_value(value: Any) -> int | None:
    """Decimal or hex (`0x1a2`, as Windows Security writes process ids)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    text = text_value(value)
    if text is None:
        return None
    try:
        return int(text, 16) if text.lower().startswith("0x") else int(text)
    except ValueError:
        return None


def datetime_value(value: Any) -> datetime | None:
    text = text_value(value)
    if text is None:
        return None
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def basename(path: str | None) -> str | None:
    if not path:
        return None
    return path.replace("/", "\\").rsplit("\\", 1)[-1] or None


def guid_value(value: Any) -> str | None:
    """`{5770385f-c22a-43e0-bf4c-06f5698ffbd9}` -> lowercased, without braces; the all-zero guid
    Sysmon writes for an unknown process is none."""
    text = text_value(value)
    if text is None:
        return None
    guid = text.strip("{}").lower()
    return None if not guid.strip("0-") else guid[:_SHORT]


def sha256_value(hashes: Any) -> str | None:
    """`SHA1=...,MD5=...,SHA256=...,IMPHASH=...` -> the SHA256, lowercased."""
    text = text_value(hashes)
    if text is None:
        return None
    for part in text.split(","):
        name, _, digest = part.partition("=")
        if name.strip().upper() == "SHA256" and len(digest.strip()) == 64:
            return digest.strip().lower()
    return None


def account_value(flat: Mapping[str, Any], prefix: str) -> str | None:
    user = short_value(flat.get(f"{prefix}UserName"))
    if user is None:
        return None
    domain = short_value(flat.get(f"{prefix}DomainName"))
    return f"{domain}\\{user}" if domain else user
