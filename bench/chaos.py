"""Issue 11's chaos run: `python -m bench.chaos --minutes 5 --database sqlite|postgres
[--kill-every 2-5] [--temporal-kills 2] [--store-kills N] [--workers 3] [--out F]`.

A deployment of real processes on this machine (`chaos_deploy.py`): a Temporal dev server of the
run's own, `garrison emulate` serving CrowdStrike, PAN-OS, Okta and Jira seeded from recorded
incidents, `garrison server --no-workers` and `--workers` `garrison worker` processes using the
vendor adapters against the emulators, on a SQLite store or a fresh PostgreSQL database. For
`--minutes`, recorded incidents are replayed through `POST /api/alerts` (`--incidents-per-min`)
and simulated analysts approve every request over the API (`chaos_traffic.py`), while
(`chaos_kills.py`) a worker is SIGKILLed every 2 to 5 s, the Temporal server is SIGKILLed
`--temporal-kills` times and started again on its database, the store's writers (the server and
every worker) are SIGKILLed together `--store-kills` times (on PostgreSQL their sessions are also
terminated with `pg_terminate_backend`), and the emulators' fault knobs are turned in turn.
Everything killed is started again at once. An operator (`chaos_operator.py`) releases what
Garrison contained once its actions have ended, every `--release-every` s, so that containments
happen again throughout the run. Then the run waits for every incident to close and every
workflow to end.

Prints and writes (JSON, `--out`) the figures (`chaos_figures.py`): incidents (started, closed,
waiting for a human), kills per kind with their times, each kill's recovery (the process
answering again; the first progress in the audit log after that), effective vendor changes (the
emulators' ledgers), duplicates (vendor changes, tickets, comments), failed or stuck workflows
(Temporal visibility), `database is locked` and tracebacks in every process's log, and
`verify_run()`'s report. Exit 1 unless: no duplicate of any kind, no failed or stuck workflow,
no `database is locked`, every incident settled and `verify_run()` clean. Not in the test suite.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from temporalio.client import Client

from bench.chaos_deploy import (
    CHAOS_APP,
    ChaosStack,
    Emulators,
    fresh_postgres,
    start_emulators,
)
from bench.chaos_figures import log_findings
from bench.chaos_gather import gather, settle_workflows
from bench.chaos_kills import ChaosLog, Keeper, Plan, fault_loop, kill_loop
from bench.chaos_operator import Operator
from bench.chaos_traffic import Desk, Sent, replays, send_replays
from bench.temporal_server import KillableTemporal
from simulations.loader import load_all
from tests.scenarios.settle import wait_settled
from tests.scenarios.stack import StackConfig
from tools.models import Environment

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "simulations" / "incidents"
# Recorded incidents whose responses touch every vendor: hosts to isolate (one and two approvers),
# accounts to disable, addresses to block, and a ticket with comments for each.
RECORDINGS = (
    "otrf-empire-wdigest-hr001",
    "otrf-empire-smbexec-ws5-ws6",
    "otrf-empire-ninjacopy-dc01",
    "otrf-lsass-nanodump-mkt01",
    "otrf-lsass-comsvcs-prd01",
    "otrf-empire-regsvr32-c2-ws5",
)
STARTUP_S = 300.0


async def chaos(args: argparse.Namespace, folder: Path, database_url: str | None) -> dict[str, Any]:
    paths = [CORPUS / name for name in RECORDINGS]
    temporal = KillableTemporal(folder / "temporal")
    await temporal.start()
    emulators: Emulators | None = None
    try:
        emulators = await start_emulators(folder, paths)
        return await _run(args, folder, temporal, emulators, database_url, paths)
    finally:
        if emulators is not None:
            emulators.process.terminate()
            with contextlib.suppress(Exception):
                emulators.process.wait(timeout=30)
        await temporal.stop()


async def _run(
    args: argparse.Namespace,
    folder: Path,
    temporal: KillableTemporal,
    emulators: Emulators,
    database_url: str | None,
    paths: list[Path],
) -> dict[str, Any]:
    scope = f"chaos_{uuid.uuid4().hex[:8]}"
    config = StackConfig(
        folder=folder / "stack", temporal_address=temporal.address, scope=scope, world=Environment()
    )
    stack = ChaosStack(config, emulators.env, database_url)
    log = ChaosLog()
    keeper = Keeper(stack, [f"worker{n}" for n in range(1, args.workers + 1)], log)
    background = [asyncio.create_task(keeper.run())]
    try:
        if not await keeper.wait_up(STARTUP_S):
            raise RuntimeError(f"the stack did not start:\n{stack.tail('server')}")
        desk = Desk(stack.base_url, stack.tokens.analysts, scope)
        loads: list[float] = []
        background += [
            asyncio.create_task(desk.run()),
            asyncio.create_task(_sample_load(loads)),
        ]
        faults = asyncio.create_task(fault_loop(emulators.urls, args.fault_every, log))
        operator = _operator(stack, emulators, database_url, scope)
        releasing = asyncio.create_task(operator.run(args.release_every))
        started = time.time()
        planned = replays(load_all(paths).incidents, args.minutes, args.incidents_per_min, scope)
        sender = asyncio.create_task(send_replays(stack.base_url, stack.tokens.sender, planned))
        plan = Plan(
            args.minutes,
            args.kill_every,
            args.temporal_kills,
            args.temporal_down_s,
            args.store_kills,
            database_url,
        )
        await kill_loop(plan, keeper, temporal, log, random.Random(args.seed))
        sent = await sender
        for task in (faults, releasing):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        load_ended = time.time()
        await keeper.wait_up(STARTUP_S)
        client = await Client.connect(temporal.address)
        settle_s = await _settle(stack, client, scope, args.settle_s)
        gathered = await gather(stack, emulators, client, scope, sent, log, operator, started)
    finally:
        for task in background:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        stack.close()
    logs = _logs(stack, folder)
    figures = _figures(
        args, database_url, planned, sent, desk, loads, settle_s, load_ended - started, logs
    )
    figures |= gathered
    figures["required"] = required(figures)
    return figures


def required(figures: dict[str, Any]) -> dict[str, bool]:
    """Issue 11's bar: no duplicate of any kind, no failed or stuck workflow, no `database is
    locked`; and every incident settled with `verify_run()` clean."""
    duplicates = figures["duplicates"]
    workflows = figures["workflows"]
    return {
        "no_duplicates": duplicates["changes"]
        == duplicates["tickets"]
        == duplicates["comments"]
        == 0,
        "no_failed_or_stuck_workflows": workflows["failed"] == workflows["stuck"] == 0,
        "no_database_is_locked": figures["database_is_locked"] == 0,
        "settled": figures["settle_s"] is not None,
        "verify_run_clean": not figures["problems"],
    }


def _operator(
    stack: ChaosStack, emulators: Emulators, database_url: str | None, scope: str
) -> Operator:
    """The operator reads the store on sessions of the script's own, never terminated."""
    settings = stack.settings()
    if database_url is not None:
        settings = settings.model_copy(
            update={"database_url": f"{database_url}?application_name={CHAOS_APP}"}
        )
    inventory = Path(emulators.env["GARRISON_INVENTORY_FILE"]).read_text(encoding="utf-8")
    return Operator(emulators.urls, Environment.model_validate_json(inventory), settings, scope)


async def _settle(stack: ChaosStack, client: Client, scope: str, timeout_s: float) -> float | None:
    """Seconds until every incident is closed in the store and every workflow has ended (or
    waits for a human); None past `timeout_s`."""
    try:
        closed = await wait_settled(stack.settings(), scope, timeout_s, pending_counts=False)
    except TimeoutError as error:
        print(f"not settled: {error}", file=sys.stderr)
        return None
    ended = await settle_workflows(client, stack, timeout_s - closed)
    if ended is None:
        print("not settled: workflows still running", file=sys.stderr)
    return None if ended is None else closed + ended


async def _sample_load(loads: list[float]) -> None:
    while True:
        loads.append(os.getloadavg()[0])
        await asyncio.sleep(15)


def _logs(stack: ChaosStack, folder: Path) -> dict[str, str]:
    files = {name: stack.log(name) for name in stack.processes}
    files |= {"temporal": folder / "temporal" / "temporal.log", "emulate": folder / "emulate.log"}
    return {n: p.read_text(errors="replace") for n, p in files.items() if p.exists()}


def _figures(
    args: argparse.Namespace,
    database_url: str | None,
    planned: list[Any],
    sent: Sent,
    desk: Desk,
    loads: list[float],
    settle_s: float | None,
    load_s: float,
    logs: dict[str, str],
) -> dict[str, Any]:
    findings = log_findings(logs)
    return {
        "database": "postgres" if database_url else "sqlite",
        "minutes": args.minutes,
        "load_s": round(load_s, 1),
        "workers": args.workers,
        "kill_every_s": list(args.kill_every),
        "load_average": {
            "mean": round(statistics.mean(loads), 2) if loads else None,
            "max": round(max(loads), 2) if loads else None,
            "cores": os.cpu_count(),
        },
        "replays": {
            "planned": len(planned),
            "acknowledged_incidents": len(sent.incidents),
            "answers": dict(sent.statuses),
            "retries": sent.retries,
            "given_up": sent.given_up[:5],
        },
        "desk": {"answers": dict(desk.answers), "problems": desk.problems[:5]},
        "settle_s": None if settle_s is None else round(settle_s, 1),
        "database_is_locked": sum(f["database_is_locked"] for f in findings.values()),
        "logs": findings,
    }


def _kill_every(text: str) -> tuple[float, float]:
    low, _, high = text.partition("-")
    pair = (float(low), float(high or low))
    if not 0 < pair[0] <= pair[1]:
        raise argparse.ArgumentTypeError(f"{text!r}: LOW-HIGH seconds, 0 < LOW <= HIGH")
    return pair


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.chaos", description=__doc__)
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--database", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--kill-every", type=_kill_every, default=(2.0, 5.0), help="LOW-HIGH s")
    parser.add_argument("--temporal-kills", type=int, default=2)
    parser.add_argument("--temporal-down-s", type=float, default=10.0)
    parser.add_argument("--store-kills", type=int, default=3)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--incidents-per-min", type=float, default=20.0)
    parser.add_argument("--fault-every", type=float, default=20.0, help="s between vendor faults")
    parser.add_argument(
        "--release-every", type=float, default=20.0, help="s between the operator's releases"
    )
    parser.add_argument("--settle-s", type=float, default=900.0)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--out", type=Path, default=ROOT / ".garrison" / "bench-chaos.json")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    return parser.parse_args(argv)


@contextlib.contextmanager
def _database(kind: str) -> Iterator[str | None]:
    if kind == "sqlite":
        yield None
    else:
        with fresh_postgres() as url:
            yield url


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    folder = Path(tempfile.mkdtemp(prefix="garrison-chaos-"))
    os.environ["XDG_STATE_HOME"] = str(folder / "state")  # this run's own audit anchors
    try:
        with _database(args.database) as database_url:
            figures = asyncio.run(chaos(args, folder, database_url))
    finally:
        if args.keep:
            print(f"kept {folder}", file=sys.stderr)
        else:
            shutil.rmtree(folder, ignore_errors=True)
    figures["ok"] = all(figures["required"].values())
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(figures, indent=2, default=str) + "\n", encoding="utf-8")
    _print(figures)
    print(f"wrote {args.out}")
    return 0 if figures["ok"] else 1


def _print(figures: dict[str, Any]) -> None:
    for name, value in figures.items():
        if name == "kills":
            print(f"{'kills':>28}: {value['by_kind']}")
            for kill in value["events"]:
                print(f"{'':>30}{json.dumps(kill, default=str)}")
        else:
            print(f"{name:>28}: {json.dumps(value, default=str)}")


if __name__ == "__main__":
    sys.exit(main())
