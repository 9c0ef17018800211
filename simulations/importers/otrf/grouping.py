"""Garrison's grouping rule over one recording: which matched events form one incident.

Every event a Sigma rule matched becomes an `orchestrator.ingest.grouping.Record`: its time, its
host, and the person it names (SYSTEM and machine accounts name no one, so they never join two
hosts). The rule groups the records (shared host or person, gaps of at most the window), the
same rule the OCSF importer applies to findings. One group is one incident candidate:

- a label names the group that holds the events its selection matches, and must name exactly one
  (a selection spread over two groups is two incidents by the rule: split the label);
- no two labels name the same group (an attack and the background noise beside it on the same
  host in the same minutes are one incident by the rule, so the noise cannot be a benign incident);
- the groups no label names are listed, so a reviewer sees what is left unlabelled.

Within its group, the label's selection says which alerts the incident carries: the reviewer may
leave the lab's noise beside the attack out of the recorded incident.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from orchestrator.ingest.grouping import DEFAULT_WINDOW, Group, Record, describe, group
from simulations.importers.otrf.alerts import Key, SigmaHit, selected_keys
from simulations.importers.otrf.entities import entities, is_system_account
from simulations.importers.otrf.events import Event, when
from simulations.importers.otrf.labels import IncidentLabel

NOUN = "matched events"


@dataclass(frozen=True)
class RecordingGroups:
    """The groups of one recording's matched events; `keys[i]` is record `i` of the rule."""

    dataset: str
    keys: list[Key]
    groups: list[Group]

    def members(self, g: Group) -> set[Key]:
        return {self.keys[i] for i in g.members}

    def describe(self, g: Group) -> str:
        return f"{self.dataset}: {describe(g, NOUN)}"


@dataclass(frozen=True)
class Assignment:
    """Each label's group (by label id), and what is wrong with the labels of the recording."""

    groups: dict[str, Group]
    problems: list[str]
    unlabelled: list[str]


def record(event: Event) -> Record:
    """The event as the rule sees it: when, the host, and the person acting (if any)."""
    found = entities(event)
    person = found.user if found.user and not is_system_account(found.user) else None
    return Record.of(when(event), [found.host], [person])


def group_recording(
    dataset: str, evidence: dict[Key, Event], window: timedelta = DEFAULT_WINDOW
) -> RecordingGroups:
    keys = sorted(evidence, key=lambda k: (when(evidence[k]), k))
    return RecordingGroups(dataset, keys, group([record(evidence[k]) for k in keys], window))


def assign(
    labels: list[IncidentLabel],
    hits: list[SigmaHit],
    evidence: dict[Key, Event],
    recording: RecordingGroups,
) -> Assignment:
    """Each label's one group; every problem names the label and the groups involved."""
    group_of = {recording.keys[i]: g for g in recording.groups for i in g.members}
    chosen: dict[str, Group] = {}
    owner: dict[int, str] = {}
    problems: list[str] = []
    for label in labels:
        found = {id(group_of[k]): group_of[k] for k in selected_keys(label, hits, evidence)}
        if len(found) != 1:
            listed = "; ".join(describe(g, NOUN) for g in found.values())
            what = f"{len(found)} groups ({listed})" if found else "no matched event"
            problems.append(f"{label.id}: the selection names {what} in {recording.dataset}")
            continue
        [(key, picked)] = found.items()
        if key in owner:
            problems.append(
                f"{label.id}: names the group of {owner[key]!r} in {recording.dataset}"
                f" ({describe(picked, NOUN)}); one group is one incident"
            )
            continue
        owner[key] = label.id
        chosen[label.id] = picked
    unlabelled = [recording.describe(g) for g in recording.groups if id(g) not in owner]
    return Assignment(chosen, problems, unlabelled)
