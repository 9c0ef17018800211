"""The three shapes raw events arrive in, flattened to one: flat (the recorded-incident format,
and most OTRF files), winlogbeat (fields nested under `event_data`) and Sentinel rows (fields in an
`EventData` JSON string, some with `_string` or `_dynamic` suffixes); and what every mapper reads
first from the flat event: its source, event id, time and host.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from tools.event_values import datetime_value, int_value, short_value, text_value

_SUFFIXES = ("_string", "_dynamic", "_int", "_bool")


class FlatEvent(dict[str, Any]):
    """An event `Telemetry.from_events` flattened once for every mapper: flattening it is itself."""


def flatten(event: Mapping[str, Any]) -> dict[str, Any]:
    """One flat dict whatever the shape; nested event fields win over envelope fields."""
    if isinstance(event, FlatEvent):
        return event
    flat = {_strip_suffix(k): v for k, v in event.items()}
    nested = event.get("event_data")
    if isinstance(nested, Mapping):
        flat.update({_strip_suffix(k): v for k, v in nested.items()})
    payload = event.get("EventData")
    if isinstance(payload, str) and payload.lstrip().startswith("{"):
        try:
            payload = json.loads(payload)
        except ValueError:
            payload = None
    if isinstance(payload, Mapping):
        flat.update({_strip_suffix(k): v for k, v in payload.items()})
    return flat


@lru_cache(maxsize=4_096)  # field names repeat on every event; bounded all the same
def _strip_suffix(key: str) -> str:
    for suffix in _SUFFIXES:
        if key.endswith(suffix) and len(key) > len(suffix):
            return key[: -len(suffix)]
    return key


def event_source(flat: Mapping[str, Any]) -> str | None:
    """The normalised source (`sysmon`, `security`, `zeek_conn`, `zeek_dns`...)."""
    declared = text_value(flat.get("event_source"))
    if declared:
        return declared.lower()
    for key in ("Channel", "log_name", "EventLog", "SourceName", "source_name", "Source"):
        channel = (text_value(flat.get(key)) or "").lower()
        if "sysmon" in channel:
            return "sysmon"
        if channel in ("security", "microsoft-windows-security-auditing"):
            return "security"
    if "id.orig_h" in flat:
        return "zeek_dns" if "query" in flat else "zeek_conn"
    return None


def event_id(flat: Mapping[str, Any]) -> int | None:
    return int_value(flat.get("EventID", flat.get("event_id")))


def event_time(flat: Mapping[str, Any]) -> datetime | None:
    for key in ("@timestamp", "TimeCreated", "TimeGenerated", "Timestamp", "UtcTime"):
        parsed = datetime_value(flat.get(key))
        if parsed is not None:
            return parsed
    epoch = flat.get("ts")
    if isinstance(epoch, int | float) and not isinstance(epoch, bool):
        return datetime.fromtimestamp(epoch, UTC)
    return None


def event_host(flat: Mapping[str, Any]) -> str | None:
    """The host the event happened on. In the recorded-incident format `host` is the asset id;
    in raw OTRF files it is the collector, so the source's own computer name wins there."""
    if "event_source" in flat:
        return short_value(flat.get("host"))
    for key in ("Hostname", "computer_name", "Computer", "DeviceName"):
        name = short_value(flat.get(key))
        if name:
            return name
    return short_value(flat.get("host"))
