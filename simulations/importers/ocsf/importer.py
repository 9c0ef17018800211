"""Orchestration of the OCSF import: findings, events and labels in; incident folders out.

Findings are read whole (they are few); they are grouped by `orchestrator.ingest.grouping`; each
label selects one group; then the events file is streamed once, feeding every incident's cut and the
inventory of devices and users. Nothing is written until every input line and every label has been
checked: any problem raises `InputError` listing them all, and the output folder is left as it was.
Incidents are staged in a hidden folder inside `out` and moved into place at the end.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from pydantic import ValidationError

from orchestrator.ingest.grouping import DEFAULT_WINDOW, Group, Record, describe, group
from simulations.importers.ocsf.attribution import source, write_attribution
from simulations.importers.ocsf.environment import Inventory, build_environment
from simulations.importers.ocsf.events import is_ocsf, telemetry_event
from simulations.importers.ocsf.findings import Finding, read_findings
from simulations.importers.ocsf.labels import OcsfLabel, OcsfLabelsFile, read_labels
from simulations.importers.ocsf.reader import InputError, json_lines, note, where
from simulations.importers.ocsf.telemetry import Cut
from simulations.importers.otrf.events import Event
from simulations.importers.otrf.importer import write_incident
from simulations.loader import Problem, format_loc
from simulations.spec import SCHEMA, RecordedIncident


@dataclass
class ImportResult:
    written: list[Path] = field(default_factory=list)
    incidents: list[RecordedIncident] = field(default_factory=list)
    unlabelled: list[str] = field(default_factory=list)  # one line per group without a label
    notices: list[str] = field(default_factory=list)
    attribution: Path | None = None


def run(
    findings_path: Path,
    events_path: Path | None,
    labels_path: Path,
    out: Path,
    window: timedelta = DEFAULT_WINDOW,
) -> ImportResult:
    """Import the labelled groups of findings into `out`; raises `InputError` on any defect."""
    labels, problems = read_labels(labels_path)
    inventory = Inventory()
    findings: list[Finding] = []
    for raw, finding in read_findings(findings_path, problems):
        inventory.observe_ocsf(raw)
        findings.append(finding)
    if not findings and not problems:
        problems.append(Problem(str(findings_path), "", "holds no finding"))
    if problems or labels is None:
        raise InputError(problems)
    findings.sort(key=lambda f: (f.time, f.line))
    records = [Record.of(f.time, [f.alert.entities.host], f.people) for f in findings]
    groups = group(records, window)
    chosen, problems = select_groups(labels, labels_path, groups, findings)
    if problems:
        raise InputError(problems, [describe(g) for g in groups])
    cuts = [Cut(label, [findings[i] for i in g.members]) for label, g in chosen]
    if events_path is not None:
        _stream_events(events_path, cuts, inventory, problems)
        if problems:
            raise InputError(problems)
    result = ImportResult(
        unlabelled=[
            f"unlabelled group: {describe(g)}"
            for g in groups
            if all(g is not picked for _, picked in chosen)
        ]
    )
    built = [_build(cut, labels, findings_path, events_path, inventory, result) for cut in cuts]
    result.written = _write(out, built)
    result.incidents = [incident for incident, _ in built]
    result.attribution = write_attribution(out)
    return result


def select_groups(
    labels: OcsfLabelsFile, path: Path, groups: list[Group], findings: list[Finding]
) -> tuple[list[tuple[OcsfLabel, Group]], list[Problem]]:
    """Each label's one group; a label selecting none or several, or a group selected twice, is
    a problem naming the label."""
    chosen: list[tuple[OcsfLabel, Group]] = []
    problems: list[Problem] = []
    owner: dict[int, str] = {}
    for i, label in enumerate(labels.incidents):
        field_path = f"incidents[{i}].select"
        hits = [g for g in groups if label.select.matches(g, findings)]
        if len(hits) != 1:
            found = "; ".join(describe(g) for g in hits) or f"none of {len(groups)}"
            problems.append(Problem(str(path), field_path, f"{label.id}: selects {found} groups"))
            continue
        [hit] = hits
        if id(hit) in owner:
            message = f"{label.id}: selects the group of {owner[id(hit)]!r} too"
            problems.append(Problem(str(path), field_path, message))
            continue
        owner[id(hit)] = label.id
        chosen.append((label, hit))
    return chosen, problems


def _stream_events(
    path: Path, cuts: list[Cut], inventory: Inventory, problems: list[Problem]
) -> None:
    for number, raw in json_lines(path, problems):
        event, errors = telemetry_event(raw)
        for field_path, message in errors:
            note(problems, path, Problem(where(path, number), field_path, message))
        if event is None:
            continue
        if is_ocsf(raw):
            inventory.observe_ocsf(raw)
        inventory.observe_event(event)
        for cut in cuts:
            cut.offer(number, event)


def _build(
    cut: Cut,
    labels: OcsfLabelsFile,
    findings_path: Path,
    events_path: Path | None,
    inventory: Inventory,
    result: ImportResult,
) -> tuple[RecordedIncident, list[Event]]:
    label = cut.label
    telemetry, row_of_line = cut.events()
    alerts = [
        f.alert.model_copy(
            update={
                "evidence": sorted(
                    row_of_line[cut.line_of_uid[uid]]
                    for uid in f.related_events
                    if uid in cut.line_of_uid
                )
            }
        )
        for f in cut.findings
    ]
    if events_path is not None and (missing := cut.missing()):
        result.notices.append(
            f"{label.id}: {len(missing)} related event(s) not in {events_path.name},"
            f" e.g. {missing[0]!r}"
        )
    try:
        incident = RecordedIncident.model_validate(
            {
                "schema": SCHEMA,
                "id": label.id,
                "title": label.title,
                "source": source(labels.source, findings_path, events_path, cut.findings),
                "environment": build_environment(inventory, alerts, telemetry),
                "alerts": alerts,
                "truth": label.truth,
                "analyst": label.analyst,
            }
        )
    except ValidationError as error:
        raise InputError(
            [Problem(label.id, format_loc(d["loc"]), d["msg"]) for d in error.errors()]
        ) from None
    return incident, telemetry


def _write(out: Path, built: list[tuple[RecordedIncident, list[Event]]]) -> list[Path]:
    """Stage every incident, then move each into place (replacing an earlier import)."""
    out.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".ocsf-import-", dir=out))
    try:
        staged = [write_incident(staging, incident, telemetry) for incident, telemetry in built]
        written = []
        for folder in staged:
            target = out / folder.name
            if target.exists():
                shutil.rmtree(target)
            folder.rename(target)
            written.append(target)
        return written
    finally:
        shutil.rmtree(staging, ignore_errors=True)
