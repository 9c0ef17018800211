"""Benchmark the importer's Sigma engine and check it against the precomputed reference hits.

Prints the rules read, compiled and skipped, the compile time cold (empty cache) and cached, then
per recording the events, the time and rate of loading and querying, and the agreement with the
recording's `sigma_alerts.jsonl`: the share of its (rule, file, line) triples the engine found,
the triples the engine found beyond them, and the (rule, file) pairs whose hit count is the same
(the reference lists at most 50 lines per pair but counts them all). Everything is measured.

    .venv/bin/python scripts/bench_sigma.py                      # every recording
    .venv/bin/python scripts/bench_sigma.py SDWIN-190518201207 LSASS_campaign_02
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from simulations.importers.otrf.alerts import read_reference_hits, read_reference_totals
from simulations.importers.sigma.engine import Evaluation, evaluate
from simulations.importers.sigma.rules import CompiledRule, load_rules

SHARED = Path("/work/shared/datasets")


@dataclass(frozen=True)
class Agreement:
    listed: int  # (rule, file, line) triples listed by the reference
    found: int  # of those, found by the engine
    extra: int  # found by the engine, not listed, in pairs the reference lists in full
    beyond_cap: int  # found by the engine in pairs whose reference list was cut at 50
    pairs: int  # (rule, file) pairs of the reference
    same_count: int  # of those, with the engine's hit count equal to the reference's
    missing_rules: list[str]  # reference rules the engine did not fire at all

    @property
    def coverage(self) -> float | None:
        return self.found / self.listed if self.listed else None


def agreement(folder: Path, result: Evaluation) -> Agreement:
    reference = read_reference_hits(folder)
    totals = read_reference_totals(folder)
    listed = {(h.rule_id, h.source, r) for h in reference for r in h.rows}
    ours = {(h.rule_id, h.source, r) for h in result.hits for r in h.rows}
    counts = Counter((h.rule_id, h.source) for h in result.hits for _ in h.rows)
    cut = {(h.rule_id, h.source) for h in reference if totals[(h.rule_id, h.source)] > len(h.rows)}
    unlisted = ours - listed
    return Agreement(
        listed=len(listed),
        found=len(ours & listed),
        extra=sum(1 for t in unlisted if t[:2] not in cut),
        beyond_cap=sum(1 for t in unlisted if t[:2] in cut),
        pairs=len(totals),
        same_count=sum(1 for pair, total in totals.items() if counts[pair] == total),
        missing_rules=sorted({h.rule_id for h in reference} - {h.rule_id for h in result.hits}),
    )


@dataclass
class Totals:
    events: int = 0
    seconds: float = 0.0
    load_seconds: float = 0.0
    listed: int = 0
    found: int = 0
    extra: int = 0


HEADER = (
    f"{'recording':<26} {'events':>7} {'load s':>7} {'query s':>7} {'ev/s':>7} {'run':>5}"
    f" {'err':>3} {'hits':>5} {'covered':>13} {'extra':>5} {'cut+':>5} {'counts=':>8}"
)


def bench(folder: Path, rules: list[CompiledRule], totals: Totals) -> None:
    """Evaluate one recording, print its row (and what disagrees), add to the totals."""
    started = time.perf_counter()
    result = evaluate(folder, rules)
    took = time.perf_counter() - started
    agree = agreement(folder, result)
    totals.events += result.events
    totals.seconds += took
    totals.load_seconds += result.load_seconds
    totals.listed += agree.listed
    totals.found += agree.found
    totals.extra += agree.extra
    share = f" {agree.coverage:4.0%}" if agree.coverage is not None else "    -"
    covered = f"{agree.found}/{agree.listed}{share}"
    rate = result.events / took if took else 0.0
    print(
        f"{folder.name:<26} {result.events:>7} {result.load_seconds:>7.2f}"
        f" {result.query_seconds:>7.2f} {rate:>7.0f} {result.rules_run:>5}"
        f" {len(result.errors):>3} {len(result.hits):>5} {covered:>13} {agree.extra:>5}"
        f" {agree.beyond_cap:>5} {agree.same_count:>3}/{agree.pairs:<4}"
    )
    for rule_id in agree.missing_rules:
        print(f"  reference rule not fired: {rule_id}")
    for rule_id, error in result.errors.items():
        print(f"  rule error: {rule_id}: {error}")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument("--rules", type=Path, default=SHARED / "sigma-rules" / "sigma-rules.tar.gz")
    parser.add_argument("--datasets", type=Path, default=SHARED / "otrf")
    parser.add_argument("names", nargs="*", help="recording folders; default: all")
    args = parser.parse_args()
    names = args.names or sorted(
        p.name for p in args.datasets.iterdir() if (p / "sigma_alerts.jsonl").is_file()
    )

    with tempfile.TemporaryDirectory() as cache:  # empty: the first load compiles
        cold = load_rules(args.rules, Path(cache))
        cached = load_rules(args.rules, Path(cache))
    rules = cached.rules
    print(f"rules: {rules.files} files, {len(rules.rules)} compiled, {rules.failed} skipped")
    for reason, count in rules.failures.items():
        print(f"  skipped: {count} {reason}")
    print(
        f"compile: cold {cold.seconds:.2f}s, cached {cached.seconds:.2f}s (cached={cached.cached})"
    )

    print(HEADER)
    totals = Totals()
    for name in names:
        bench(args.datasets / name, rules.rules, totals)
    overall = f"{totals.found / totals.listed:.1%}" if totals.listed else "-"
    rate = totals.events / totals.seconds if totals.seconds else 0.0
    loading = totals.events / totals.load_seconds if totals.load_seconds else 0.0
    print(
        f"total: {len(names)} recordings, {totals.events} events in {totals.seconds:.1f}s"
        f" ({rate:.0f} events/s with {len(rules.rules)} rules; loading alone {loading:.0f}"
        f" events/s), reference triples found {totals.found}/{totals.listed} ({overall}),"
        f" extra {totals.extra}"
    )


if __name__ == "__main__":
    main()
