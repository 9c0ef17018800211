"""Reading OTRF recordings: the event files, streamed with `lzma`, and the three event shapes.

Shapes that occur: flat objects (most), winlogbeat-6 objects with a nested `event_data`, and
Sentinel rows whose `EventData` is a JSON string. `normalise` turns each into one flat event with
`@timestamp` (millisecond UTC), `host` (asset id), `hostname`, `event_source` and an integer
`EventID`; `first` is the field reader every other module uses on such events. Linux audit logs
are text records, read by `auditd` into the same flat events (`event_source` `auditd`).
"""

from __future__ import annotations

import json
import lzma
import re
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

from simulations.importers.otrf.auditd import is_audit_log, stream_audit

Event = dict[str, object]
DROPPED_FIELDS = {"Message", "message", "@metadata", "beat", "host", "event_data", "EventData"}


def event_files(folder: Path) -> list[Path]:
    """Host and cloud event files of one recording, Linux audit logs (`host/*.log.xz`) included
    (Zeek logs are not read). macOS metadata files (`._name`, binary) that some archives carry
    beside the real ones are skipped."""
    found = [
        *folder.glob("host/*.json.xz"),
        *folder.glob("host/*.log.xz"),
        *folder.glob("cloud/*.json.xz"),
    ]
    return sorted(path for path in found if not path.name.startswith("._"))


def stream(path: Path) -> Iterator[tuple[int, Event]]:
    """(0-based line, normalised event) per JSON object line, or per record of a Linux audit log
    (`auditd`); other lines are skipped."""
    if is_audit_log(path):
        yield from stream_audit(path)
        return
    with lzma.open(path, "rt", encoding="utf-8", errors="replace") as lines:
        for row, line in enumerate(lines):
            try:
                raw = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(raw, dict):
                yield row, normalise(raw)


def normalise(raw: dict[str, object]) -> Event:
    """One flat event with `@timestamp`, `host` (asset id) and `event_source`, from any shape."""
    flat: Event = {k: v for k, v in raw.items() if k not in DROPPED_FIELDS}
    nested = raw.get("event_data")
    if isinstance(nested, dict):
        flat.update({str(k): v for k, v in nested.items()})
    sentinel = raw.get("EventData")
    if isinstance(sentinel, str):
        try:
            sentinel = json.loads(sentinel)
        except json.JSONDecodeError:
            sentinel = None
    if isinstance(sentinel, dict):
        flat.update({str(k): v for k, v in sentinel.items()})
    hostname = first(raw, "Hostname", "computer_name", "Computer") or _nested_name(raw.get("host"))
    flat["hostname"] = hostname
    flat["host"] = asset_id(hostname) if hostname else None
    flat["@timestamp"] = _timestamp(raw)
    flat["event_source"] = event_source(first(raw, "Channel", "log_name", "Type") or "")
    event_id = raw.get("EventID", raw.get("event_id"))
    flat["EventID"] = (
        int(event_id) if isinstance(event_id, int | str) and str(event_id).isdigit() else None
    )
    flat.pop("event_id", None)
    return flat


def asset_id(hostname: str) -> str:
    return hostname.split(".", 1)[0].upper()


def event_source(channel: str) -> str:
    lowered = channel.lower()
    for needle, name in (
        ("sysmon", "sysmon"),
        ("powershell", "powershell"),
        ("security", "security"),
    ):
        if needle in lowered:
            return name
    return re.sub(r"[^a-z0-9]+", "_", lowered).strip("_") or "unknown"


def first(event: dict[str, object], *names: str) -> str | None:
    """The first of `names` with a value, as text; empty strings and `-` count as absent."""
    for name in names:
        value = event.get(name)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
        if isinstance(value, str) and value.strip() not in ("", "-"):
            return value
    return None


def when(event: Event) -> datetime:
    """The normalised event's `@timestamp` as an aware datetime."""
    return datetime.fromisoformat(str(event["@timestamp"]).replace("Z", "+00:00"))


def _nested_name(value: object) -> str | None:
    if isinstance(value, dict):
        name = value.get("name")  # type: ignore[union-attr]
        return name if isinstance(name, str) else None
    return value if isinstance(value, str) else None


def _timestamp(raw: dict[str, object]) -> str:
    value = first(raw, "@timestamp", "TimeCreated", "TimeGenerated", "ts") or "1970-01-01T00:00:00Z"
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return value
    return parsed.strftime("%Y-%m-%dT%H:%M:%S.") + f"{parsed.microsecond // 1000:03d}Z"
