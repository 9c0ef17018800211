"""The alert groups of recordings that have no labels yet: what a labeller needs to write them.

`list_groups` runs the hit source over one recording, groups the matched events by Garrison's rule
(`grouping`, the same call the import makes) and describes each group: a key to name it by
(`<dataset>#<n>`, in time order), its time span, hosts, users, the rules hit and the number of
alerts the import would make of it (one per rule, host and acting process, as `alert_groups`
folds them). No label is read, so a new recording is listed before any label exists; the labeller
then writes a `select` (rules, hosts, images, start, end) that names one group.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from orchestrator.ingest.grouping import DEFAULT_WINDOW
from simulations.importers.otrf.alerts import HitSource, alert_groups
from simulations.importers.otrf.grouping import group_recording
from simulations.importers.otrf.telemetry import scan

SEPARATOR = " | "  # between a line's fields (rule titles hold no " | ")
EVERY_ALERT = 1_000_000  # no `max_alerts` cap when counting a group's alerts


@dataclass(frozen=True)
class GroupSummary:
    key: str
    start: datetime
    end: datetime
    hosts: list[str]
    users: list[str]
    rules: list[tuple[str, str]]  # (rule id, title), by title
    matched: int  # matched events
    alerts: int

    def line(self) -> str:
        span = f"{self.start:%Y-%m-%dT%H:%M:%S}Z..{self.end:%Y-%m-%dT%H:%M:%S}Z"
        rules = "; ".join(f"{title} ({rule_id})" for rule_id, title in self.rules)
        return SEPARATOR.join(
            [
                self.key,
                span,
                f"hosts {', '.join(self.hosts) or '-'}",
                f"users {', '.join(self.users) or '-'}",
                f"{self.alerts} alerts ({self.matched} matched events)",
                f"rules {rules}",
            ]
        )


def recordings(folder: Path) -> list[Path]:
    """`folder` itself when it is a recording (it holds event files), else its recordings."""
    if _is_recording(folder):
        return [folder]
    return sorted(p for p in folder.iterdir() if p.is_dir() and _is_recording(p))


def _is_recording(folder: Path) -> bool:
    return any((folder / part).is_dir() for part in ("host", "cloud", "network"))


def list_groups(
    folder: Path, hits: HitSource, window: timedelta = DEFAULT_WINDOW
) -> list[GroupSummary]:
    """The alert groups of one recording, in time order; empty when no rule matched."""
    recording_hits = hits.hits(folder)
    found = scan(folder, {(h.source, r) for h in recording_hits for r in h.rows})
    grouped = group_recording(folder.name, found.evidence, window)
    summaries: list[GroupSummary] = []
    for n, g in enumerate(grouped.groups, start=1):
        keys = grouped.members(g)
        rules = {
            h.rule_id: h.title for h in recording_hits if any((h.source, r) in keys for r in h.rows)
        }
        alerts = alert_groups(recording_hits, found.evidence, keys, EVERY_ALERT)
        summaries.append(
            GroupSummary(
                key=f"{folder.name}#{n}",
                start=g.start,
                end=g.end,
                hosts=list(g.hosts),
                users=list(g.users),
                rules=sorted(rules.items(), key=lambda kv: (kv[1], kv[0])),
                matched=len(g.members),
                alerts=len(alerts),
            )
        )
    return summaries
