"""Trimming a recording to an incident's telemetry: the evidence plus bounded context.

Context is the process, network and logon events on the alerts' hosts within `context_minutes` of
the alerts, downsampled evenly to fit `max_telemetry` with fixed shares per kind, and the
registrations of services and scheduled tasks there (System 7045, Security 4697, 4698, 4702):
what an EDR keeps of every host, and the artefact of a remote `sc create` that no Sigma rule
flags (services.exe writes it, not the attacker). Those are few; they are taken first, up to
`MAX_REGISTRATIONS`, and the rest of the budget is shared as before. The gzip output has no
timestamp or file name, so the same events give the same bytes.
"""

from __future__ import annotations

import gzip
import io
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from simulations.importers.otrf.alerts import AlertHits, Key
from simulations.importers.otrf.environment import HostFacts
from simulations.importers.otrf.events import Event, asset_id, event_files, stream, when
from simulations.importers.otrf.labels import IncidentLabel

# Context kept around the evidence: process creations, network connections, DNS, logons.
CONTEXT_KINDS: dict[tuple[str, int | None], str] = {
    ("sysmon", 1): "process",
    ("security", 4688): "process",
    ("sysmon", 3): "network",
    ("sysmon", 22): "network",
    ("security", 4624): "logon",
    ("security", 4625): "logon",
    ("security", 4648): "logon",
    ("auditd", None): "process",  # Linux audit records: the execs and what they touched
    ("system", 7045): "registration",  # a service installed
    ("security", 4697): "registration",
    ("security", 4698): "registration",  # a scheduled task registered, updated
    ("security", 4702): "registration",
}
CONTEXT_SHARE = {"process": 0.55, "network": 0.3, "logon": 0.15}
MAX_REGISTRATIONS = 50  # service and task registrations kept before the shared budget


@dataclass
class Scan:
    """One streaming pass over a recording: host facts, evidence events, context candidates."""

    facts: HostFacts = field(default_factory=HostFacts)
    evidence: dict[Key, Event] = field(default_factory=dict)
    candidates: dict[Key, Event] = field(default_factory=dict)


def scan(folder: Path, wanted: set[Key]) -> Scan:
    """Read every event once; keep the `wanted` lines and the events of a context kind."""
    result = Scan()
    for path in event_files(folder):
        for row, event in stream(path):
            result.facts.observe(event)
            key = (path.name, row)
            if key in wanted:
                result.evidence[key] = event
            elif (str(event["event_source"]), event["EventID"]) in CONTEXT_KINDS:
                result.candidates[key] = event
    return result


def name_unnamed(found: Scan, host: str | None, user: str | None) -> None:
    """Give the events that name no host `host`, and the Linux audit records that name no user
    `user` (the label's `unnamed_host`/`unnamed_user`, from the recording's documentation)."""
    if not host and not user:
        return
    for event in [*found.evidence.values(), *found.candidates.values()]:
        changed = False
        if host and event.get("host") is None:
            event["host"], event["hostname"] = asset_id(host), host
            changed = True
        if user and event.get("event_source") == "auditd" and not event.get("User"):
            event["User"] = user
        if changed:
            found.facts.observe(event)


def context(
    label: IncidentLabel,
    groups: list[AlertHits],
    evidence: dict[Key, Event],
    candidates: dict[Key, Event],
    used: int,
) -> dict[Key, Event]:
    """Process, network and logon events on the alerts' hosts around the alerts, bounded."""
    times = [when(evidence[k]) for g in groups for k in g.keys]
    margin = timedelta(minutes=label.context_minutes)
    start, end = min(times) - margin, max(times) + margin
    hosts = {evidence[k]["host"] for g in groups for k in g.keys}
    by_kind: dict[str, list[tuple[Key, Event]]] = {
        kind: [] for kind in ("registration", *CONTEXT_SHARE)
    }
    for key, event in sorted(candidates.items()):
        if event["host"] in hosts and start <= when(event) <= end:
            kind = CONTEXT_KINDS[(str(event["event_source"]), event["EventID"])]  # type: ignore[index]
            by_kind[kind].append((key, event))
    budget = max(label.max_telemetry - used, 0)
    chosen = dict(spread(by_kind["registration"], min(MAX_REGISTRATIONS, budget)))
    budget -= len(chosen)
    spare = 0
    for kind, share in CONTEXT_SHARE.items():
        items = by_kind[kind]
        room = int(budget * share) + spare
        picked = spread(items, room)
        spare = room - len(picked)
        chosen.update(picked)
    return chosen


def spread(items: list[tuple[Key, Event]], room: int) -> list[tuple[Key, Event]]:
    """At most `room` items evenly spaced over the list (deterministic downsampling)."""
    if len(items) <= room:
        return items
    if room <= 0:
        return []
    return [items[i * len(items) // room] for i in range(room)]


def telemetry_gzip(events: Iterable[Event]) -> bytes:
    """JSON lines with sorted keys, gzipped with mtime=0 and no file name: reproducible bytes."""
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0, filename="") as gz:
        for event in events:
            gz.write((json.dumps(event, ensure_ascii=False, sort_keys=True) + "\n").encode())
    return buffer.getvalue()
