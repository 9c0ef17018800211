"""LD3, the soak: `python -m bench.soak [--minutes 30] [--rate 300] [--kill-every 5] ...`.

A whole deployment on this machine, every process real: a Temporal dev server of the soak's own,
`garrison server --no-workers` and one scenario worker (`tests/scenarios/`: the real worker runtime
over twins journaled per incident), fed `--rate` alerts a minute for `--minutes` (`soak_mix.py`:
noise bursts, and a share of recorded incidents that need approvals, approved over the API by the
simulated analysts as their requests appear). Meanwhile the worker is SIGKILLed and restarted
every `--kill-every` minutes, and the Temporal server is SIGKILLed once (at `--temporal-kill-at` of
the run) and started again `--temporal-down-s` later on the same database. Then the soak waits for
every incident to close and runs `verify_run()`.

Prints and writes (JSON, `--out`) the figures: alerts sent, acknowledged and stored, answers by
status, incidents and how they ended, approvals, ingest latency, p95 alert -> triage (all, and
outside the crash windows: from 5 s before a kill to 30 s after the process answers again), each
process's RSS sampled every `--sample-s`, the kills and how long each process was gone, the
tracebacks in each log, and the oracle's report. Exit 0 when `verify_run()` finds nothing and
every incident closed, 1 otherwise. Not in the test suite (`bench/README.md`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from temporalio.client import Client

from bench.soak_mix import APPROVAL_RECORDINGS, Planned, plan
from bench.temporal_server import KillableTemporal
from orchestrator.policy.model import load_policy
from simulations.loader import load_all
from tests.scenarios.alerts import host_name, user_name
from tests.scenarios.backends import synthetic_world
from tests.scenarios.load import Acks, percentile, send
from tests.scenarios.oracle import RunEvidence, RunReport, check_run
from tests.scenarios.settle import wait_settled
from tests.scenarios.stack import (
    ScenarioStack,
    StackConfig,
    approving_desk,
    deciding,
    rss_mib,
    scenario_stack,
)

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "simulations" / "incidents"
WINDOW_BEFORE_S, WINDOW_AFTER_S = 5.0, 30.0


@dataclass
class Chaos:
    """What the soak did to the deployment, in epoch seconds."""

    kills: list[dict[str, Any]] = field(default_factory=list)  # what, at, back_at
    died_alone: list[str] = field(default_factory=list)  # processes that exited unasked
    rss: list[dict[str, Any]] = field(default_factory=list)  # at, MiB per process

    def windows(self) -> list[tuple[float, float]]:
        return [(k["at"] - WINDOW_BEFORE_S, k["back_at"] + WINDOW_AFTER_S) for k in self.kills]


async def soak(args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    temporal = KillableTemporal(folder / "temporal")
    await temporal.start()
    try:
        return await _run(args, folder, temporal)
    finally:
        await temporal.stop()


async def _run(
    args: argparse.Namespace, folder: Path, temporal: KillableTemporal
) -> dict[str, Any]:
    scope = f"soak_{uuid.uuid4().hex[:8]}"
    recordings = [CORPUS / r for r in APPROVAL_RECORDINGS]
    loaded = load_all(recordings).incidents
    pool = range(args.hosts)
    config = StackConfig(
        folder=folder / "stack",
        temporal_address=temporal.address,
        scope=scope,
        world=synthetic_world([host_name(i) for i in pool], [user_name(i) for i in pool]),
        recordings=tuple(recordings),
    )
    stream = plan(
        args.minutes, args.rate, args.approval_share, args.hosts, loaded, datetime.now(UTC), scope
    )
    chaos = Chaos()
    async with scenario_stack(config) as stack:
        await stack.start_worker("worker")
        client = await Client.connect(temporal.address)
        started = time.time()
        async with deciding(approving_desk(stack)) as desk:
            helpers = [
                asyncio.create_task(_kill_loop(args, stack, temporal, chaos, started)),
                asyncio.create_task(_sample(args, stack, temporal, chaos)),
            ]
            try:
                acks = await send(
                    stack.base_url,
                    stack.tokens.sender,
                    [p.records for p in stream],
                    due_s=[p.due_s for p in stream],
                    concurrency=4,
                )
                helpers[0].cancel()
                settle_s = await _settle(stack, scope, args.settle_s)
            finally:
                for task in helpers:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
        evidence = RunEvidence(
            settings=stack.settings(),
            scope=scope,
            journal_dir=stack.journal_dir,
            temporal=client,
            threshold=load_policy(stack.policy_file).threshold,
            acknowledged=acks.uids,
        )
        report = await check_run(evidence)
        tracebacks = stack.tracebacks()
        desk_problems = desk.problems
    return _figures(args, stream, acks, report, chaos, settle_s, tracebacks, desk_problems)


async def _settle(stack: ScenarioStack, scope: str, timeout_s: float) -> float | None:
    try:
        return await wait_settled(stack.settings(), scope, timeout_s, pending_counts=False)
    except TimeoutError as error:
        print(f"not settled: {error}", file=sys.stderr)
        return None


async def _kill_loop(
    args: argparse.Namespace,
    stack: ScenarioStack,
    temporal: KillableTemporal,
    chaos: Chaos,
    started: float,
) -> None:
    """The worker killed every `kill_every` minutes, Temporal once; restarted at once."""
    events = [(m * 60 * args.kill_every, "worker") for m in range(1, 1_000)]
    events = [e for e in events if e[0] < args.minutes * 60]
    if args.temporal_kill_at > 0:
        events.append((args.minutes * 60 * args.temporal_kill_at, "temporal"))
    for at, what in sorted(events):
        while time.time() < started + at:
            await asyncio.sleep(1)
            await _watch(stack, chaos)
        killed = time.time()
        if what == "worker":
            stack.kill("worker")
            await stack.start_worker("worker")
        else:
            await temporal.kill_and_restart(args.temporal_down_s)
        chaos.kills.append({"what": what, "at": killed, "back_at": time.time()})
        print(
            f"killed {what} at +{killed - started:.0f}s, back in {time.time() - killed:.1f}s",
            flush=True,
        )
    while True:
        await asyncio.sleep(1)
        await _watch(stack, chaos)


async def _watch(stack: ScenarioStack, chaos: Chaos) -> None:
    """A worker that died on its own is a finding; it is restarted so the soak goes on."""
    worker = stack.processes["worker"]
    if worker.poll() is not None:
        chaos.died_alone.append(f"worker exited {worker.returncode} at {time.time():.0f}")
        await stack.start_worker("worker")
    server = stack.processes["server"]
    if server.poll() is not None and not any(d.startswith("server") for d in chaos.died_alone):
        chaos.died_alone.append(f"server exited {server.returncode} at {time.time():.0f}")


async def _sample(
    args: argparse.Namespace, stack: ScenarioStack, temporal: KillableTemporal, chaos: Chaos
) -> None:
    while True:
        sizes = stack.rss_mib()
        pid = temporal.pid()
        size = rss_mib(pid) if pid is not None else None
        if size is not None:
            sizes["temporal"] = size
        chaos.rss.append({"at": time.time(), **{k: round(v, 1) for k, v in sizes.items()}})
        await asyncio.sleep(args.sample_s)


def _figures(
    args: argparse.Namespace,
    stream: list[Planned],
    acks: Acks,
    report: RunReport,
    chaos: Chaos,
    settle_s: float | None,
    tracebacks: dict[str, int],
    desk_problems: list[str],
) -> dict[str, Any]:
    sent = sum(len(p.records) for p in stream)
    replays = [p for p in stream if p.kind != "noise"]
    triage = _triage_latencies(acks, report)
    windows = chaos.windows()
    outside = [s for at, s in triage if not any(a <= at <= b for a, b in windows)]
    ms = [s * 1000 for s in acks.latencies_s]
    return {
        "minutes": args.minutes,
        "rate_per_min": args.rate,
        "alerts_sent": sent,
        "alerts_from_recordings": sum(len(p.records) for p in replays),
        "replays": len(replays),
        "statuses": {str(k): v for k, v in sorted(acks.statuses.items())},
        "server_errors": acks.server_errors,
        "failures": acks.failures[:5],
        "ingest_p50_ms": round(percentile(ms, 50), 1),
        "ingest_p99_ms": round(percentile(ms, 99), 1),
        "alerts_acknowledged": len(acks.uids),
        "alerts_stored": report.alerts_stored,
        "incidents": report.incidents,
        "closed": report.closed,
        "waiting_for_human": report.waiting_for_human,
        "workflows": report.workflows,
        "approvals": dict(report.approvals),
        "actions_executed": report.actions_executed,
        "vendor_changes": report.vendor_changes,
        "settle_s": None if settle_s is None else round(settle_s, 1),
        "alert_to_triage_p95_s": round(percentile([s for _, s in triage], 95), 2),
        "alert_to_triage_p95_outside_crash_windows_s": round(percentile(outside, 95), 2),
        "alert_to_triage_max_s": round(max((s for _, s in triage), default=float("nan")), 2),
        "kills": chaos.kills,
        "died_alone": chaos.died_alone,
        "rss_mib": _rss_summary(chaos.rss),
        "tracebacks": tracebacks,
        "desk_problems": desk_problems[:5],
        "verify_run": report.summary(),
        "problems": report.problems[:30],
        "ok": report.ok and report.closed == report.incidents,
    }


def _triage_latencies(acks: Acks, report: RunReport) -> list[tuple[float, float]]:
    """(first alert sent, seconds until its incident's first triage) per triaged incident."""
    return [
        (acks.first_ack[i], at.timestamp() - acks.first_ack[i])
        for i, at in report.triaged_at.items()
        if i in acks.first_ack
    ]


def _rss_summary(samples: list[dict[str, Any]]) -> dict[str, Any]:
    """Per process: first, peak and last MiB, and the spread ((max - min) / median) over the
    last two thirds of the run, LD3's stability window (20 of 30 minutes)."""
    names = sorted({k for s in samples for k in s if k != "at"})
    late = samples[len(samples) // 3 :]
    summary: dict[str, Any] = {}
    for name in names:
        values = [s[name] for s in samples if name in s]
        tail = [s[name] for s in late if name in s]
        spread = (max(tail) - min(tail)) / statistics.median(tail) if tail else None
        summary[name] = {
            "first": values[0] if values else None,
            "peak": max(values, default=None),
            "last": values[-1] if values else None,
            "late_spread": None if spread is None else round(spread, 3),
            "samples": [s.get(name) for s in samples],
        }
    return summary


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__)
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--rate", type=float, default=300.0, help="alerts per minute")
    parser.add_argument("--approval-share", type=float, default=0.05)
    parser.add_argument("--hosts", type=int, default=2_000, help="noise hosts, used in turn")
    parser.add_argument("--kill-every", type=float, default=5.0, help="minutes between kills")
    parser.add_argument(
        "--temporal-kill-at", type=float, default=0.5, help="fraction of the run; 0: never"
    )
    parser.add_argument(
        "--temporal-down-s", type=float, default=15.0, help="how long Temporal stays dead"
    )
    parser.add_argument("--sample-s", type=float, default=30.0, help="RSS sampling period")
    parser.add_argument("--settle-s", type=float, default=600.0)
    parser.add_argument("--out", type=Path, default=ROOT / ".garrison" / "bench-soak.json")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    folder = Path(tempfile.mkdtemp(prefix="garrison-soak-"))
    os.environ["XDG_STATE_HOME"] = str(folder / "state")  # this run's own audit anchors
    try:
        figures = asyncio.run(soak(args, folder))
    finally:
        if args.keep:
            print(f"kept {folder}", file=sys.stderr)
        else:
            shutil.rmtree(folder, ignore_errors=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    for name, value in figures.items():
        if name == "rss_mib":
            for process, rss in value.items():
                shown = {k: v for k, v in rss.items() if k != "samples"}
                print(f"{'rss ' + process:>44}: {shown}")
        else:
            print(f"{name:>44}: {value}")
    print(f"wrote {args.out}")
    return 0 if figures["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
