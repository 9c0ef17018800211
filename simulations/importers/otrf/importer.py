"""Orchestration of the OTRF import: labels in, incident folders and `ATTRIBUTION.md` out.

Per label: take the selected Sigma hits from the hit source, stream the recording once
(`telemetry.scan`), group the hits into alerts, trim the telemetry, describe the environment, and
write `incident.json` plus `telemetry.jsonl.gz`. Then `ATTRIBUTION.md` is rewritten for every
labelled incident present in the output folder, so an `--only` rebuild keeps the whole corpus
credited. The command line runs the Sigma rules itself (`--rules`, compiled once per run and
cached, each recording evaluated once however many labels use it); `--reference-hits` reads the
precomputed `sigma_alerts.jsonl` instead, to check the engine against it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterable
from pathlib import Path

from simulations.importers.otrf.alerts import (
    HitSource,
    ReferenceHits,
    build_alert,
    select_groups,
)
from simulations.importers.otrf.attribution import recording, source, write_attribution
from simulations.importers.otrf.environment import build_environment
from simulations.importers.otrf.events import Event
from simulations.importers.otrf.labels import IncidentLabel, read_labels
from simulations.importers.otrf.telemetry import context, scan, telemetry_gzip
from simulations.importers.sigma.rules import cache_dir_from, load_rules
from simulations.loader import INCIDENT_FILE, load_incident
from simulations.spec import SCHEMA, RecordedIncident

SIGMA_RULES = "sigma-rules"  # beside the OTRF folder in the shared datasets, holds the DRL text
RULES_FILE = "sigma-rules.tar.gz"  # in the SIGMA_RULES folder: the default --rules


def build_incident(
    label: IncidentLabel, folder: Path, hit_source: HitSource
) -> tuple[RecordedIncident, list[Event]]:
    """The incident and its trimmed telemetry (evidence plus bounded context), deterministic."""
    selected = set(label.select.rules)
    hits = [h for h in hit_source.hits(folder) if h.rule_id in selected]
    found = scan(folder, {(h.source, r) for h in hits for r in h.rows})
    groups = select_groups(label, hits, found.evidence)
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


def run(
    labels_path: Path,
    datasets: Path,
    out: Path,
    only: set[str] | None = None,
    sigma_rules: Path | None = None,
    hits: HitSource | None = None,
) -> list[Path]:
    """Build the labelled incidents (or the `only` ones) into `out`; the incident folders.

    `hits` defaults to the precomputed reference hits; the command line passes the engine.
    """
    labels = read_labels(labels_path).incidents
    hit_source = hits or ReferenceHits()
    written: list[Path] = []
    for label in labels:
        if only and label.id not in only:
            continue
        incident, telemetry = build_incident(label, datasets / label.dataset, hit_source)
        written.append(write_incident(out, incident, telemetry))
        for warning in unresolved_targets(incident, telemetry):
            print(f"warning: {label.id}: {warning}", file=sys.stderr)
    corpus = [
        (recording(label.id, datasets / label.dataset), load_incident(out / label.id))
        for label in labels
        if (out / label.id / INCIDENT_FILE).is_file()
    ]
    write_attribution(out, corpus, datasets, sigma_rules or datasets.parent / SIGMA_RULES)
    return written


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
    parser.add_argument("--labels", type=Path, required=True)
    parser.add_argument("--datasets", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--only", action="append", help="incident id to (re)build; repeatable")
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
    for folder in run(args.labels, args.datasets, args.out, only, sigma_rules, hit_source):
        print(folder)
    return 0
