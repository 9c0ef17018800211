"""Alerts from a recording's Sigma hits.

A hit names a SigmaHQ rule and the event lines it matched in one file. Hits come from a `HitSource`:
the importer's own engine (`simulations.importers.sigma.SigmaEngine`, which runs the rules over the
events), or `ReferenceHits`, the recording's precomputed `sigma_alerts.jsonl`, kept to check the
engine against (its `event_rows` stop at 50 per rule and file; `read_reference_totals` gives the
full counts). `selected_keys` gives the events a label's selection names (they find the label's
group: `simulations.importers.otrf.grouping`); `alert_groups` folds a group's hits into one alert
per (rule, host, acting process), and `build_alert` turns one into an `Alert` that keeps the rule
author (Detection Rule License 1.1).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from simulations.importers.otrf.entities import entities
from simulations.importers.otrf.events import Event, when
from simulations.importers.otrf.labels import AlertSelection, IncidentLabel
from tools.models import Alert, AttackRef, RuleRef, Severity

Key = tuple[str, int]  # (source file name, 0-based line)
MAX_EVIDENCE = 20  # evidence events kept per alert
TACTICS = {
    "reconnaissance", "resource-development", "initial-access", "execution", "persistence",
    "privilege-escalation", "defense-evasion", "credential-access", "discovery",
    "lateral-movement", "collection", "command-and-control", "exfiltration", "impact",
}  # fmt: skip


@dataclass(frozen=True)
class SigmaHit:
    source: str
    rule_id: str
    title: str
    level: str
    tags: list[str]
    author: str
    rows: list[int]


@dataclass
class AlertHits:
    """The hits of one rule on one acting process: one alert."""

    hit: SigmaHit
    keys: list[Key]


class HitSource(Protocol):
    """Where a recording's Sigma hits come from."""

    def hits(self, folder: Path) -> list[SigmaHit]: ...


class ReferenceHits:
    """The precomputed `sigma_alerts.jsonl` of each recording: for checking, not for building."""

    def hits(self, folder: Path) -> list[SigmaHit]:
        return read_reference_hits(folder)


REFERENCE_FILE = "sigma_alerts.jsonl"


def read_reference_hits(folder: Path) -> list[SigmaHit]:
    hits: list[SigmaHit] = []
    with (folder / REFERENCE_FILE).open(encoding="utf-8") as lines:
        for line in lines:
            row = json.loads(line)
            hits.append(
                SigmaHit(
                    source=row["source"],
                    rule_id=row["rule_id"],
                    title=row["rule_title"],
                    level=row["level"],
                    tags=list(row.get("tags") or []),
                    author=row.get("rule_author") or "unknown",
                    rows=list(row["event_rows"]),
                )
            )
    return hits


def read_reference_totals(folder: Path) -> dict[tuple[str, str], int]:
    """(rule id, source file): how many events the reference counted, listed in full or not."""
    with (folder / REFERENCE_FILE).open(encoding="utf-8") as lines:
        rows = [json.loads(line) for line in lines]
    return {(row["rule_id"], row["source"]): int(row["hits"]) for row in rows}


def selected_keys(label: IncidentLabel, hits: list[SigmaHit], events: dict[Key, Event]) -> set[Key]:
    """The matched events the label's selection names: hits of its rules, on its hosts, by its
    images, within its time bounds."""
    rules = set(label.select.rules)
    return {
        (hit.source, row)
        for hit in hits
        if hit.rule_id in rules
        for row in hit.rows
        if (hit.source, row) in events and _selected(label.select, events[(hit.source, row)])
    }


def alert_groups(
    hits: list[SigmaHit], events: dict[Key, Event], keys: set[Key], max_alerts: int
) -> list[AlertHits]:
    """One group per (rule, host, acting process) over the matched events in `keys`: repeated
    hits of a rule on a process dedupe. Past `max_alerts`, the most severe groups are kept (ties:
    the earliest); the result is in time order."""
    groups: dict[tuple[str, str, str], AlertHits] = {}
    for hit in sorted(hits, key=lambda h: (h.rule_id, h.source)):
        for row in hit.rows:
            if (hit.source, row) not in keys:
                continue
            found = entities(events[(hit.source, row)])
            name = ((found.process.name if found.process else None) or "").lower()
            pid = found.process.pid if found.process else None
            group_key = (hit.rule_id, found.host or "", f"{pid}:{name}")
            groups.setdefault(group_key, AlertHits(hit, [])).keys.append((hit.source, row))
    for group in groups.values():
        group.keys = sorted(group.keys, key=lambda k: (events[k]["@timestamp"], k))[:MAX_EVIDENCE]

    def first(g: AlertHits) -> tuple[str, str]:
        return (str(events[g.keys[0]]["@timestamp"]), g.hit.title)

    kept = sorted(groups.values(), key=lambda g: (-Severity(g.hit.level).rank, first(g)))
    return sorted(kept[:max_alerts], key=first)


def _selected(select: AlertSelection, event: Event) -> bool:
    found = entities(event)
    if select.hosts and (found.host or "").upper() not in {h.upper() for h in select.hosts}:
        return False
    name = (found.process.name if found.process else None) or ""
    if select.images and name.lower() not in {i.lower() for i in select.images}:
        return False
    moment = when(event)
    return not ((select.start and moment < select.start) or (select.end and moment > select.end))


def build_alert(
    incident_id: str, n: int, group: AlertHits, events: dict[Key, Event], line_of: dict[Key, int]
) -> Alert:
    """Alert `n` of the incident; `evidence` holds the lines of its events in the telemetry."""
    hit = group.hit
    first_event = events[group.keys[0]]
    tactic = next((t[7:] for t in hit.tags if t.startswith("attack.") and t[7:] in TACTICS), None)
    techniques = [t[7:].upper() for t in hit.tags if re.fullmatch(r"attack\.t\d{4}(\.\d{3})?", t)]
    return Alert(
        uid=f"{incident_id}:{hit.rule_id[:8]}:{n}",
        time=when(first_event),
        title=hit.title,
        severity=Severity(hit.level),
        product="sigma",
        rule=RuleRef(uid=hit.rule_id, name=hit.title, author=hit.author),
        attacks=[AttackRef(technique=t, tactic=tactic) for t in techniques],
        entities=entities(first_event),
        evidence=sorted(line_of[k] for k in group.keys),
    )
