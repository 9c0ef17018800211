"""LD1 at full scale: `python -m bench.ld1 [--alerts 10000] [--minutes 2] [--hosts 50] ...`.

An alert storm from one detection (security-scenarios.md LD1): by default 10,000 alerts of one
rule on 50 hosts, 90% of them exact re-sends, paced evenly over two minutes (5,000/min), one alert
per request from 8 clients, into a real `garrison server --no-workers` with one scenario worker
(`tests/scenarios/`), on a Temporal dev server of its own. Then it waits for the incidents to
settle and runs `verify_run()`.

Prints and writes (JSON, `--out`) the figures LD1 judges: ingest latency p50/p99/max (request
sent -> 202), answers by status (5xx), accepted = stored + deduplicated, incidents and workflows,
Temporal starts + signals and triage calls (from the workflows' histories), the seconds to
settle, and the oracle's report. Targets (PASS/FAIL): p99 <= 250 ms, no 5xx, no loss,
workflows <= 50, starts + signals <= 3,000, triage calls <= workflows, verify_run() clean.
Exit 0 when every target passes, 1 otherwise. The CI-sized run is
`tests/scenarios/test_ld1_storm.py`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from temporalio.client import Client

from bench.temporal_server import KillableTemporal
from orchestrator.policy.model import load_policy
from tests.scenarios.alerts import host_name, storm, user_name
from tests.scenarios.backends import synthetic_world
from tests.scenarios.load import Acks, batches, percentile, send
from tests.scenarios.oracle import RunEvidence, RunReport, check_run
from tests.scenarios.settle import Deliveries, deliveries, wait_settled
from tests.scenarios.stack import StackConfig, scenario_stack

ROOT = Path(__file__).resolve().parent.parent
SETTLE_S = 600.0


async def run(args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    temporal = KillableTemporal(folder / "temporal")
    await temporal.start()
    try:
        return await _storm(args, folder, temporal)
    finally:
        await temporal.stop()


async def _storm(
    args: argparse.Namespace, folder: Path, temporal: KillableTemporal
) -> dict[str, Any]:
    scope = f"ld1_{uuid.uuid4().hex[:8]}"
    hosts = range(args.hosts)
    config = StackConfig(
        folder=folder / "stack",
        temporal_address=temporal.address,
        scope=scope,
        world=synthetic_world([host_name(i) for i in hosts], [user_name(i) for i in hosts]),
    )
    start = datetime.now(UTC) - timedelta(minutes=5)
    alerts = storm(args.alerts, args.hosts, args.duplicates, args.minutes * 60, start, scope)
    rate = args.alerts / (args.minutes * 60)
    client = await Client.connect(temporal.address)
    async with scenario_stack(config) as stack:
        await stack.start_worker("worker")
        began = time.monotonic()
        acks = await send(
            stack.base_url,
            stack.tokens.sender,
            batches(alerts, args.batch),
            rate_per_s=rate,
            concurrency=args.concurrency,
        )
        load_s = time.monotonic() - began
        settle_s = await wait_settled(stack.settings(), scope, SETTLE_S)
        evidence = RunEvidence(
            settings=stack.settings(),
            scope=scope,
            journal_dir=stack.journal_dir,
            temporal=client,
            threshold=load_policy(stack.policy_file).threshold,
            acknowledged=acks.uids,
        )
        report = await check_run(evidence)
        cost = await deliveries(client, f"{scope}-triage")
        tracebacks = stack.tracebacks()
    return _figures(args, acks, load_s, settle_s, report, cost, tracebacks)


def _figures(
    args: argparse.Namespace,
    acks: Acks,
    load_s: float,
    settle_s: float,
    report: RunReport,
    cost: Deliveries,
    tracebacks: dict[str, int],
) -> dict[str, Any]:
    ms = [s * 1000 for s in acks.latencies_s]
    figures: dict[str, Any] = {
        "alerts": args.alerts,
        "hosts": args.hosts,
        "duplicate_share": args.duplicates,
        "minutes": args.minutes,
        "batch": args.batch,
        "concurrency": args.concurrency,
        "load_s": round(load_s, 1),
        "statuses": {str(k): v for k, v in sorted(acks.statuses.items())},
        "server_errors": acks.server_errors,
        "failures": acks.failures[:5],
        "p50_ms": round(percentile(ms, 50), 1),
        "p99_ms": round(percentile(ms, 99), 1),
        "max_ms": round(max(ms, default=float("nan")), 1),
        "records_acknowledged": acks.sent_records,
        "new": acks.new,
        "duplicates": acks.duplicates,
        "stored": report.alerts_stored,
        "incidents": report.incidents,
        "storm_incidents": sum("-storm-" in i for i in acks.incidents),
        "workflows": cost.workflows,
        "starts_plus_signals": cost.starts + cost.signals,
        "triage_calls": cost.triage_calls,
        "settle_s": round(settle_s, 1),
        "verify_run": report.summary(),
        "problems": report.problems[:20],
        "tracebacks": tracebacks,
    }
    figures["targets"] = {
        "p99 <= 250 ms": figures["p99_ms"] <= 250,
        "no 5xx": acks.server_errors == 0 and not acks.failures,
        "accepted == stored + deduplicated": acks.new == report.alerts_stored
        and acks.new + acks.duplicates == args.alerts,
        "workflows <= 50": cost.workflows <= 50,
        "starts + signals <= 3000": cost.starts + cost.signals <= 3_000,
        "triage calls <= workflows": cost.triage_calls <= cost.workflows,
        "verify_run() clean": report.ok,
    }
    return figures


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.ld1", description=__doc__)
    parser.add_argument("--alerts", type=int, default=10_000)
    parser.add_argument("--minutes", type=float, default=2.0, help="over how long they are sent")
    parser.add_argument("--hosts", type=int, default=50)
    parser.add_argument("--duplicates", type=float, default=0.9, help="share of exact re-sends")
    parser.add_argument("--batch", type=int, default=1, help="alerts per request")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--out", type=Path, default=ROOT / ".garrison" / "bench-ld1.json")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    folder = Path(tempfile.mkdtemp(prefix="garrison-ld1-"))
    # Default audit anchors go under $XDG_STATE_HOME: this run's own, for every process.
    os.environ["XDG_STATE_HOME"] = str(folder / "state")
    try:
        figures = asyncio.run(run(args, folder))
    finally:
        if args.keep:
            print(f"kept {folder}", file=sys.stderr)
        else:
            shutil.rmtree(folder, ignore_errors=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    for name, value in figures.items():
        if name != "targets":
            print(f"{name:>24}: {value}")
    for target, ok in figures["targets"].items():
        print(f"{'PASS' if ok else 'FAIL'}  {target}")
    print(f"wrote {args.out}")
    return 0 if all(figures["targets"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
