"""One incident's telemetry, cut from the events file as it streams by.

Kept: the events the incident's findings name (`finding_info.related_events[].uid` equal to the
event's `metadata.uid`), always; and as context, the events on the incident's hosts from
`context_minutes` before its first finding to as long after its last, downsampled evenly to fit
`max_telemetry`. Flat Windows events carry no OCSF uid, so they are context only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from orchestrator.ingest.grouping import host_key
from simulations.importers.ocsf.findings import Finding
from simulations.importers.ocsf.labels import OcsfLabel
from simulations.importers.otrf.events import Event, when
from simulations.importers.otrf.telemetry import spread


@dataclass
class Cut:
    label: OcsfLabel
    findings: list[Finding]  # the group's, in arrival order
    evidence: dict[int, Event] = field(default_factory=dict)  # by events-file line
    line_of_uid: dict[str, int] = field(default_factory=dict)
    context: list[tuple[int, Event]] = field(default_factory=list)
    start: datetime = field(init=False)
    end: datetime = field(init=False)
    hosts: set[str] = field(init=False)
    wanted: set[str] = field(init=False)

    def __post_init__(self) -> None:
        margin = timedelta(minutes=self.label.context_minutes)
        self.start = min(f.time for f in self.findings) - margin
        self.end = max(f.time for f in self.findings) + margin
        self.hosts = {host_key(h) for f in self.findings if (h := f.alert.entities.host)}
        self.wanted = {uid for f in self.findings for uid in f.related_events}

    def offer(self, line: int, event: Event) -> None:
        uid = event.get("ocsf_uid")
        if isinstance(uid, str) and uid in self.wanted and uid not in self.line_of_uid:
            self.line_of_uid[uid] = line
            self.evidence[line] = event
            return
        host = event.get("host")
        on_host = isinstance(host, str) and host_key(host) in self.hosts
        if on_host and self.start <= when(event) <= self.end:
            self.context.append((line, event))

    def events(self) -> tuple[list[Event], dict[int, int]]:
        """The kept events in time order, and each events-file line's row among them."""
        room = max(self.label.max_telemetry - len(self.evidence), 0)
        kept = [*self.evidence.items(), *spread_lines(self.context, room)]
        kept.sort(key=lambda item: (str(item[1]["@timestamp"]), item[0]))
        return [event for _, event in kept], {line: row for row, (line, _) in enumerate(kept)}

    def missing(self) -> list[str]:
        """Related-event uids named by the findings but absent from the events file."""
        return sorted(self.wanted - set(self.line_of_uid))


def spread_lines(items: list[tuple[int, Event]], room: int) -> list[tuple[int, Event]]:
    """At most `room` items, evenly spaced (the OTRF importer's deterministic downsampling)."""
    keyed = [(("", line), event) for line, event in items]
    return [(key[1], event) for key, event in spread(keyed, room)]
