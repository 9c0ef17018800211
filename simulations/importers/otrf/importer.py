"""Orchestration of the OTRF import: labels in, incident folders and `ATTRIBUTION.md` out.

Per recording: take its Sigma hits from the hit source, stream it once (`telemetry.scan`), group
the matched events by Garrison's rule (`grouping`: shared host or person within the window) and
check that each label's selection falls in one group of its own; per label: fold the selected hits
into alerts, trim the telemetry, describe the environment, and write `incident.json` plus
`telemetry.jsonl.gz`. Then
`ATTRIBUTION.md` is rewritten for every labelled incident present in the output folder, so an
`--only` rebuild keeps the whole corpus credited. The command line runs the Sigma rules itself
(`--rules`, compiled once per run and cached, each recording evaluated once however many labels
use it); `--reference-hits` reads the precomputed `sigma_alerts.jsonl` instead, to check the
engine against it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from orchestrator.ingest.grouping import DEFAULT_WINDOW
from simulations.importers.otrf.alerts import (
    HitSource,
    Key,
    ReferenceHits,
    SigmaHit,
    alert_groups,
    build_alert,
)
from simulations.importers.otrf.attribution import recording, source, write_attribution
from simulations.importers.otrf.environment import build_environment
from simulations.importers.otrf.events import Event
from simulations.importers.otrf.grouping import assign, group_recording
from simulations.importers.otrf.labels import IncidentLabel, read_labels
from simulations.importers.otrf.telemetry import (
    Scan,
    context,
    name_unnamed,
    scan,
    telemetry_gzip,
)
from simulations.importers.sigma.rules import cache_dir_from, load_rules
from simulations.loader import INCIDENT_FILE, load_incident
from simulations.spec import SCHEMA, RecordedIncident

SIGMA_RULES = "sigma-rules"  # beside the OTRF folder in the shared datasets, holds the DRL text
RULES_FILE = "sigma-rules.tar.gz"  # in the SIGMA_RULES folder: the default --rules


def build_incident(
    label: IncidentLabel, folder: Path, hits: list[SigmaHit], found: Scan, keys: set[Key]
) -> tuple[RecordedIncident, list[Event]]:
    """The incident whose alerts are the hits on the matched events `keys` (the label's selection,
    inside its one group), and its trimmed telemetry (evidence plus bounded context);
    deterministic."""
    groups = alert_groups(hits, found.evidence, keys, label.max_alerts)
    if not groups:
        raise ValueError(f"{label.id}: the selection matches no Sigma hit in {folder.name}")
    kept_evidence = {k: found.evidence[k] for g in groups for k in g.keys}
    extra = context(label, groups, found.evidence, found.candidates, len(kept_evidence))
    ordered = sorted(
        {**kept_evidence, **extra}.items(), key=lambda kv: (kv[1]["@timestamp"], kv[0])
    )
    line_of = {key: i for i, (key, _) in enumerate(ordered)}
    alerts = [
        build_alert(label.id, n, g, found.evidence, line_of) for n, g in enumerate(groups, start=1)
    ]
    telemetry = [event for _, event in ordered]
    incident = RecordedIncident.model_validate(
        {
            "schema": SCHEMA,
            "id": label.id,
            "title": label.title,
            "source": source(folder, [g.hit for g in groups]),
            "environment": build_environment(found.facts, alerts, telemetry),
            "alerts": alerts,
            "truth": label.truth,
            "analyst": label.analyst,
        }
    )
    return incident, telemetry


def write_incident(out: Path, incident: RecordedIncident, telemetry: Iterable[Event]) -> Path:
    folder = out / incident.id
    folder.mkdir(parents=True, exist_ok=True)
    body = incident.model_dump(mode="json", by_alias=True, exclude_none=False)
    (folder / INCIDENT_FILE).write_text(json.dumps(body, indent=2, ensure_ascii=False) + "\n")
    (folder / "telemetry.jsonl.gz").write_bytes(telemetry_gzip(telemetry))
    return folder


@dataclass
class ImportResult:
    written: list[Path] = field(default_factory=list)
    unlabelled: list[str] = field(default_factory=list)  # one line per group no label names


class LabelProblems(ValueError):
    """Labels that do not fit the grouping rule; `result` holds what the other recordings gave."""

    def __init__(self, problems: list[str], result: ImportResult) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems
        self.result = result


def run(
    labels_paths: Path | Sequence[Path],
    datasets: Path,
    out: Path,
    only: set[str] | None = None,
    sigma_rules: Path | None = None,
    hits: HitSource | None = None,
    window: timedelta = DEFAULT_WINDOW,
) -> ImportResult:
    """Build the labelled incidents (or the `only` ones) of the recordings in `datasets` into `out`.

    Each recording is read once: its Sigma hits (`hits`, by default the precomputed reference
    hits; the command line passes the engine), its matched events grouped by Garrison's rule,
    every label of the recording (from all the files) given its one group. A recording whose
    labels do not fit the rule writes nothing; `LabelProblems` lists them all at the end.
    """
    paths = [labels_paths] if isinstance(labels_paths, Path) else list(labels_paths)
    labels = [label for path in paths for label in read_labels(path).incidents]
    hit_source = hits or ReferenceHits()
    result = ImportResult()
    problems: list[str] = []
    by_dataset: dict[str, list[IncidentLabel]] = {}
    for label in labels:
        by_dataset.setdefault(label.dataset, []).append(label)
    for dataset, recording_labels in by_dataset.items():
        wanted = [label for label in recording_labels if not only or label.id in only]
        if not wanted:
            continue
        folder = datasets / dataset
        recording_hits = hit_source.hits(folder)
        found = scan(folder, {(h.source, r) for h in recording_hits for r in h.rows})
        named = unnamed_names(recording_labels)
        if isinstance(named, str):
            problems.append(named)
            continue
        name_unnamed(found, *named)
        groups = group_recording(dataset, found.evidence, window)
        assignment = assign(recording_labels, recording_hits, found.evidence, groups)
        result.unlabelled += assignment.unlabelled
        if assignment.problems:
            problems += assignment.problems
            continue
        for label in wanted:
            keys = groups.members(assignment.groups[label.id])
            incident, telemetry = build_incident(label, folder, recording_hits, found, keys)
            result.written.append(write_incident(out, incident, telemetry))
            for warning in unresolved_targets(incident, telemetry):
                print(f"warning: {label.id}: {warning}", file=sys.stderr)
    corpus = [
        (recording(label.id, datasets / label.dataset), load_incident(out / label.id))
        for label in labels
        if (out / label.id / INCIDENT_FILE).is_file() and (datasets / label.dataset).is_dir()
    ]
    if corpus:  # nothing written, nothing to credit
        write_attribution(out, corpus, datasets, sigma_rules or datasets.parent / SIGMA_RULES)
    if problems:
        raise LabelProblems(problems, result)
    return result


def unnamed_names(labels: list[IncidentLabel]) -> tuple[str | None, str | None] | str:
    """The host and user the labels of one recording give its unnamed events, or the problem
    when they disagree (the events are the recording's, not one label's)."""
    hosts = {label.unnamed_host for label in labels if label.unnamed_host}
    users = {label.unnamed_user for label in labels if label.unnamed_user}
    if len(hosts) > 1 or len(users) > 1:
        ids = ", ".join(label.id for label in labels)
        return f"{ids}: labels of {labels[0].dataset} disagree on unnamed_host/unnamed_user"
    return (next(iter(hosts), None), next(iter(users), None))


def unresolved_targets(incident: RecordedIncident, telemetry: Iterable[Event] = ()) -> list[str]:
    """Expected-action targets found neither in the alerts, the environment nor the events."""
    env = incident.environment
    seen = {str(e.get(f)).lower() for e in telemetry for f in ("DestinationIp", "SourceIp")}
    known = {a.id.lower() for a in env.assets} | {i.id.lower() for i in env.identities}
    for alert in incident.alerts:
        e = alert.entities
        known |= {v.lower() for v in (e.src_ip, e.dst_ip, e.domain, e.user, e.host) if v}
    for asset in env.assets:
        known |= set(asset.ips)
    known |= seen
    missing: list[str] = []
    for action in [*incident.truth.expected_actions, *incident.truth.acceptable_actions]:
        target = action.target.split(":", 1)[0] if ":" in action.target else action.target
        if target.lower() not in known:
            missing.append(
                f"{action.kind.value} target {action.target!r} not in alerts/environment"
            )
    return missing


def engine_hits(rules: Path, cache_dir: Path) -> HitSource:
    """A Sigma engine over the compiled `rules` (from the cache when there), reporting to stderr."""
    # Imported here: the engine reads events with this package's modules (an import cycle).
    from simulations.importers.sigma.engine import Evaluation, SigmaEngine

    loaded = load_rules(rules, cache_dir)
    how = "from the cache" if loaded.cached else "compiled"
    print(
        f"sigma: {len(loaded.rules.rules)} rules {how} in {loaded.seconds:.1f}s from {rules},"
        f" {loaded.rules.failed} skipped (not convertible)",
        file=sys.stderr,
    )

    def summary(done: Evaluation) -> None:
        print(
            f"sigma: {done.folder}: {done.events} events, {done.rules_run} rules run,"
            f" {len(done.hits)} hits, {len(done.errors)} rule errors"
            f" ({done.load_seconds + done.query_seconds:.1f}s)",
            file=sys.stderr,
        )

    return SigmaEngine(loaded.rules.rules, on_evaluated=summary)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m simulations.importers.otrf")
    parser.add_argument("--labels", type=Path, action="append", required=True)
    parser.add_argument("--datasets", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--only", action="append", help="incident id to (re)build; repeatable")
    parser.add_argument(
        "--window", type=float, default=30.0, help="minutes between related hits of one incident"
    )
    parser.add_argument(
        "--sigma-rules",
        type=Path,
        help=f"folder holding {SIGMA_RULES}'s licence; default: {SIGMA_RULES} beside --datasets",
    )
    hits = parser.add_mutually_exclusive_group()
    hits.add_argument(
        "--rules",
        type=Path,
        help=f"Sigma rules run over the events (a rules tarball or a folder of .yml);"
        f" default: {RULES_FILE} in the --sigma-rules folder",
    )
    hits.add_argument(
        "--reference-hits",
        action="store_true",
        help="read each recording's precomputed sigma_alerts.jsonl instead of running the rules:"
        " for checking the engine against it, not for building the corpus",
    )
    parser.add_argument(
        "--sigma-cache",
        type=Path,
        help="folder of compiled rules; default: $GARRISON_SIGMA_CACHE or ~/.cache/garrison/sigma",
    )
    args = parser.parse_args(argv)
    sigma_rules = args.sigma_rules or args.datasets.parent / SIGMA_RULES
    hit_source = (
        ReferenceHits()
        if args.reference_hits
        else engine_hits(
            args.rules or sigma_rules / RULES_FILE, cache_dir_from(os.environ, args.sigma_cache)
        )
    )
    only = set(args.only or [])
    window = timedelta(minutes=args.window)
    problems: list[str] = []
    try:
        result = run(args.labels, args.datasets, args.out, only, sigma_rules, hit_source, window)
    except LabelProblems as error:
        result, problems = error.result, error.problems
    for line in result.unlabelled:
        print(f"unlabelled group: {line}", file=sys.stderr)
    for problem in problems:
        print(f"label: {problem}", file=sys.stderr)
    for folder in result.written:
        print(folder)
    return 2 if problems else 0
