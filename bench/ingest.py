"""Ingestion benchmark: `python -m bench.ingest [--out FILE] [--alerts N] [--baseline FILE] ...`.

Starts a real `garrison server` (SQLite store, its own data directory, tokens and embedded
Temporal, `--no-workers` when offered) on a free loopback port for each run, and measures from a
client process beside it:

- accepted alerts/s and p50/p99 acknowledgement latency (request sent -> 202) at each concurrency
  (default 4 and 16 clients), one alert per request and in batches (default 50), on a SOC-like
  stream (`bench/stream.py`), after a warm-up; then how long until every alert was signalled to
  its incident's workflow;
- a storm (one rule, 500 hosts, 5 minutes of alert time): how many incidents and workflows it
  made, from the answers, from `GET /api/incidents` and from Temporal.

Prints a table and writes every figure, the machine, the commit and the targets' verdicts as JSON.
Not a test: it asserts nothing and exits 0 whether or not the targets are met (1 if it failed).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench import observe
from bench.load import Outcome, drive, percentile
from bench.report import (
    RunFigures,
    as_json,
    commit,
    compare,
    machine,
    table,
    targets,
)
from bench.server import ROOT, Kind, Running, cpu_seconds, running, thread_cpu_seconds
from bench.stream import bodies, soc_stream, storm_stream

DAY0 = datetime(2026, 12, 1, tzinfo=UTC)
RUN_DEADLINE_S = 300.0  # one load phase
CLIENT = {"kind": "raw"}  # set from --client
SIGNAL_DEADLINE_S = 180.0


async def _load(
    server: Running, alerts: list[dict[str, object]], batch: int, concurrency: int
) -> tuple[Outcome, dict[str, float]]:
    """Drive the load, with the CPU each process used meanwhile."""
    temporal = server.temporal_pid()
    before = (
        time.process_time(),
        cpu_seconds(server.pid),
        thread_cpu_seconds(server.pid),
        cpu_seconds(temporal),
    )
    outcome = await drive(
        server.base_url,
        server.ingest_token,
        bodies(alerts, batch),
        concurrency,
        RUN_DEADLINE_S,
        CLIENT["kind"],
    )
    threads = thread_cpu_seconds(server.pid)
    cpu = {
        "bench": time.process_time() - before[0],
        "server": cpu_seconds(server.pid) - before[1],
        "main": threads["main_thread"] - before[2]["main_thread"],
        "others": threads["other_threads"] - before[2]["other_threads"],
        "temporal": cpu_seconds(temporal) - before[3],
    }
    return outcome, cpu


async def _signalled(server: Running, wall_s: float) -> tuple[float | None, int | None]:
    if server.kind is not Kind.GARRISON:
        return None, None
    waited, left = await observe.wait_signalled(server.data_dir, SIGNAL_DEADLINE_S)
    return (None if waited is None else wall_s + waited), left


def _figures(
    name: str,
    concurrency: int,
    batch: int,
    sent: int,
    outcome: Outcome,
    cpu: dict[str, float],
    signalled: tuple[float | None, int | None],
) -> RunFigures:
    latencies_ms = [s * 1000 for s in outcome.latencies_s]
    wall = outcome.wall_s or float("nan")
    return RunFigures(
        name=name,
        concurrency=concurrency,
        batch=batch,
        alerts=sent,
        accepted=outcome.accepted,
        requests=len(latencies_ms),
        wall_s=round(outcome.wall_s, 3),
        alerts_per_s=round(outcome.accepted / wall, 1),
        requests_per_s=round(len(latencies_ms) / wall, 1),
        p50_ms=round(percentile(latencies_ms, 50), 2),
        p99_ms=round(percentile(latencies_ms, 99), 2),
        max_ms=round(max(latencies_ms, default=float("nan")), 2),
        throttled_429=outcome.throttled,
        failures=len(outcome.failures) + (1 if outcome.timed_out else 0),
        first_failure=_first_failure(outcome),
        incidents=len(outcome.incidents),
        signalled_s=None if signalled[0] is None else round(signalled[0], 2),
        unsignalled_left=signalled[1],
        bench_cpu_s=round(cpu["bench"], 2),
        server_cpu_s=round(cpu["server"], 2),
        server_main_thread_cpu_s=round(cpu["main"], 2),
        server_other_threads_cpu_s=round(cpu["others"], 2),
        temporal_cpu_s=round(cpu["temporal"], 2),
    )


def _with_deliveries(
    figures: RunFigures, before: dict[str, int], after: dict[str, int]
) -> RunFigures:
    if not after:
        return figures
    return replace(
        figures,
        workflow_starts=after.get("start", 0) - before.get("start", 0),
        workflow_signals=after.get("signal", 0) - before.get("signal", 0),
    )


def _first_failure(outcome: Outcome) -> str | None:
    if outcome.failures:
        return outcome.failures[0]
    return "run deadline reached" if outcome.timed_out else None


async def throughput_run(
    args: argparse.Namespace, index: int, concurrency: int, batch: int
) -> tuple[RunFigures, str]:
    name = f"c{concurrency}-{'single' if batch == 1 else f'batch{batch}'}"
    profile = args.profile / f"{name}.prof" if args.profile else None
    async with running(args.server, workers=args.workers, profile=profile, keep=args.keep) as srv:
        tag = uuid.uuid4().hex[:8]
        warm_start = DAY0 + timedelta(days=2 * index)
        warm = soc_stream(args.warmup, warm_start, f"warm-{tag}", seed=index + 100)
        warmed = await drive(
            srv.base_url, srv.ingest_token, bodies(warm, batch), concurrency, 120, CLIENT["kind"]
        )
        if warmed.accepted == 0:
            raise RuntimeError(f"the server accepted no alert: {_first_failure(warmed)}")
        await _signalled(srv, 0.0)  # the warm-up's dispatch is over before the clock starts
        alerts = soc_stream(args.alerts, warm_start + timedelta(days=1), f"{name}-{tag}", index)
        before = await observe.deliveries(srv.base_url)
        outcome, cpu = await _load(srv, alerts, batch, concurrency)
        signalled = await _signalled(srv, outcome.wall_s)
        figures = _figures(name, concurrency, batch, len(alerts), outcome, cpu, signalled)
        figures = _with_deliveries(figures, before, await observe.deliveries(srv.base_url))
        print(table([figures]).splitlines()[-1], flush=True)
        if figures.workflow_starts is not None:
            print(
                f"{'':<14}workflows: {figures.workflow_starts} started, "
                f"{figures.workflow_signals} signalled",
                flush=True,
            )
        return figures, srv.mode


async def storm_run(args: argparse.Namespace) -> dict[str, Any]:
    """A fresh server (no warm-up, so every incident it lists is the storm's)."""
    profile = args.profile / "storm.prof" if args.profile else None
    async with running(args.server, workers=args.workers, profile=profile, keep=args.keep) as srv:
        alerts = storm_stream(args.storm_alerts, DAY0, f"storm-{uuid.uuid4().hex[:8]}")
        concurrency, batch = max(args.concurrency), max(args.batch)
        outcome, cpu = await _load(srv, alerts, batch, concurrency)
        signalled = await _signalled(srv, outcome.wall_s)
        run = _figures("storm", concurrency, batch, len(alerts), outcome, cpu, signalled)
        listed = await observe.listed_incidents(srv.base_url, srv.read_token)
        address = srv.temporal_address()
        workflows = await observe.workflow_count(address) if address else None
        storm = {
            "alerts": len(alerts),
            "hosts": len({a["entities"]["host"] for a in alerts}),  # type: ignore[index]
            "alert_time_span_s": 300,
            "incidents_in_answers": len(outcome.incidents),
            "storm_incidents_in_answers": sum("-storm-" in i for i in outcome.incidents),
            "incidents_listed_by_api": len(listed),
            "answers_match_api": set(listed) == outcome.incidents,
            "workflows": workflows,
            "run": as_json(run),
        }
        print(table([run]).splitlines()[-1], flush=True)
        return storm


async def bench(args: argparse.Namespace) -> dict[str, Any]:
    document: dict[str, Any] = {
        "benchmark": "garrison ingest",
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "commit": commit(ROOT),
        "settings": {
            "alerts_per_run": args.alerts,
            "warmup_alerts": args.warmup,
            "concurrency": args.concurrency,
            "batch": args.batch,
            "storm_alerts": args.storm_alerts,
            "server": args.server.value,
        },
        "notes": [
            f"clients ({args.client}: one keep-alive connection each, one event loop) run in "
            "the benchmark process; the server is a separate process; both share the machine's "
            "cores with anything else running on it",
            "each run starts its own server on an empty store; latency is per request, "
            "alerts/s per alert; CPU seconds are over the load phase only",
        ],
    }
    print(table([]).splitlines()[0], flush=True)
    runs: list[RunFigures] = []
    index = 0
    for concurrency in args.concurrency:
        for batch in (1, *args.batch):
            figures, mode = await throughput_run(args, index, concurrency, batch)
            document["mode"] = mode
            runs.append(figures)
            index += 1
    document["client"] = args.client
    document["runs"] = [as_json(r) for r in runs]
    document["storm"] = None if args.skip_storm else await storm_run(args)
    document["targets"] = targets(runs, document["storm"])
    return document


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.ingest", description=__doc__)
    parser.add_argument("--out", type=Path, default=ROOT / ".garrison" / "bench-ingest.json")
    parser.add_argument("--alerts", type=int, default=10_000, help="alerts per measured run")
    parser.add_argument("--warmup", type=int, default=1_000, help="alerts sent before each run")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[4, 16])
    parser.add_argument(
        "--batch",
        type=int,
        nargs="+",
        default=[10, 50],
        help="alerts per request of the batched runs (one alert per request is always run)",
    )
    parser.add_argument(
        "--client", choices=["raw", "httpx"], default="raw", help="the load's HTTP client"
    )
    parser.add_argument("--storm-alerts", type=int, default=10_000)
    parser.add_argument("--skip-storm", action="store_true")
    parser.add_argument("--server", type=Kind, choices=list(Kind), default=Kind.GARRISON)
    parser.add_argument("--workers", action="store_true", help="run the server's workers too")
    parser.add_argument("--baseline", type=Path, help="a previous JSON to compare with")
    parser.add_argument("--profile", type=Path, help="directory for each server's cProfile")
    parser.add_argument("--keep", action="store_true", help="keep the servers' temp dirs")
    parser.add_argument("--time-limit", type=float, default=1_800.0, help="seconds, all in all")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    CLIENT["kind"] = args.client
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
    try:
        document = asyncio.run(asyncio.wait_for(bench(args), args.time_limit))
    except Exception as error:  # the servers are already stopped by their context managers
        print(f"benchmark failed: {type(error).__name__}: {error}", file=sys.stderr)
        return 1
    if args.baseline:
        flagged = compare(document, json.loads(args.baseline.read_text()))
        document["baseline"] = {"file": str(args.baseline), "worse_by_over_20_percent": flagged}
        for line in flagged:
            print(f"REGRESSION {line}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    print(f"\nmode: {document.get('mode')}")
    if document["storm"]:
        s = document["storm"]
        print(
            f"storm: {s['alerts']} alerts, {s['hosts']} hosts, {s['alert_time_span_s']} s -> "
            f"{s['incidents_in_answers']} incidents in answers ({s['storm_incidents_in_answers']} "
            f"storm), {s['incidents_listed_by_api']} listed by the API, "
            f"{s['workflows']} Temporal workflows"
        )
    for verdict in document["targets"]:
        verdict_word = "PASS" if verdict["pass"] else "FAIL"
        print(f"{verdict_word}  {verdict['target']}: {verdict['measured']}")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
