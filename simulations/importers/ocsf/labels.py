"""The reviewed labels of an OCSF import: which group of findings each incident is, and its truth.

Labels never come from code; a person reads the groups the importer lists and writes, per incident:

    source: {license: "...", credit: "who recorded the data and made the findings"}
    incidents:
      - id: ocsf-lsass-prd01
        title: LSASS dump on PRD01
        select:                      # every criterion given must hold; at least one is needed
          hosts: [PRD01]             # the group names each of these hosts
          users: ["pandalab\\\\pedro"] # ... and each of these users
          start: 2023-08-18T08:50:00Z  # ... and has a finding within [start, end]
          end: 2023-08-18T09:10:00Z
          findings: [uid-1, uid-2]   # ... and holds each of these findings
        truth: {verdict: malicious, category: credential_access, ...}
        analyst: {policy: oracle, latency_s: 120}
        note: why these labels

A label must select exactly one group and a group may carry at most one label.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from orchestrator.ingest.grouping import Group, host_key, user_key
from simulations.importers.ocsf.findings import Finding
from simulations.loader import Problem, format_loc
from simulations.spec import INCIDENT_ID_PATTERN, AnalystSpec, Truth


class _Label(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GroupSelection(_Label):
    hosts: list[str] = Field(default_factory=list)
    users: list[str] = Field(default_factory=list)
    start: datetime | None = None
    end: datetime | None = None
    findings: list[str] = Field(default_factory=list, description="finding uids")

    @model_validator(mode="after")
    def _says_something(self) -> GroupSelection:
        if not (self.hosts or self.users or self.start or self.end or self.findings):
            raise ValueError("give at least one of hosts, users, start, end, findings")
        return self

    def matches(self, group: Group, findings: list[Finding]) -> bool:
        members = [findings[i] for i in group.members]
        hosts = {host_key(h) for h in group.hosts}
        users = {user_key(u) for u in group.users}
        uids = {f.alert.uid for f in members}
        return (
            all(host_key(h) in hosts for h in self.hosts)
            and all(user_key(u) in users for u in self.users)
            and all(uid in uids for uid in self.findings)
            and any(self._in_range(f.time) for f in members)
        )

    def _in_range(self, moment: datetime) -> bool:
        return (self.start is None or moment >= self.start) and (
            self.end is None or moment <= self.end
        )


class OcsfLabel(_Label):
    id: str = Field(pattern=INCIDENT_ID_PATTERN)
    title: str
    select: GroupSelection
    truth: Truth
    analyst: AnalystSpec = Field(default_factory=AnalystSpec)
    note: str
    context_minutes: float = Field(default=10.0, ge=0, le=24 * 60)
    max_telemetry: int = Field(default=2500, ge=10, le=20_000)


class SourceNote(_Label):
    """Where the OCSF data came from: copied into every incident's `source`."""

    license: str
    credit: str


class OcsfLabelsFile(_Label):
    source: SourceNote
    incidents: list[OcsfLabel]


def read_labels(path: Path) -> tuple[OcsfLabelsFile | None, list[Problem]]:
    """The labels file, or None and one problem per defect (file, field path, what is wrong)."""
    where = str(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as error:
        return None, [Problem(where, "", f"unreadable: {error.strerror or error}")]
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        return None, [Problem(where, "", f"bad YAML{at}: {getattr(error, 'problem', error)}")]
    try:
        labels = OcsfLabelsFile.model_validate(raw)
    except ValidationError as error:
        return None, [Problem(where, format_loc(d["loc"]), d["msg"]) for d in error.errors()]
    seen: set[str] = set()
    problems = []
    for i, label in enumerate(labels.incidents):
        if label.id in seen:
            problems.append(Problem(where, f"incidents[{i}].id", f"{label.id!r} is repeated"))
        seen.add(label.id)
    return (None if problems else labels), problems
