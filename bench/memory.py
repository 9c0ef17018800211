"""Issue 17's memory benchmark: incidents open and waiting for approval, and what they cost.

```sh
.venv/bin/python -m bench.memory                  # 1,000 then 10,000: .garrison/bench-memory.json
.venv/bin/python -m bench.memory --sizes 200,1000     # a quicker look
.venv/bin/python -m bench.memory --baseline old.json  # flags figures >20% worse
```

This process is the worker: Garrison's three roles on one Temporal dev server started for the run
(SQLite WAL, the flags Garrison uses), a SQLite store, and a policy under which every isolation
of the recorded host needs a human, with a day for the approver (no reminder, escalation or
expiry fires during the run). Every incident reads and acts on one set of in-memory twins seeded
from one recorded incident (`otrf-lsass-procdump-acct01`), as a deployment's incidents share its
EDR and directory: the memory measured is Garrison's per incident, not a twin set per incident
(`garrison simulate` builds one per incident, to score each against its own recording).
Incidents are opened through ingestion, as `garrison simulate` opens them, each under its own id,
up to each size in turn (cumulative); nobody answers, so each stays open at its approval.

Figures at each size (and at 0): the worker's resident memory (VmRSS after a GC) and the Temporal
server's, the store's size on disk, and the time to open one more incident: from handing its
alerts to ingestion to its approval request being stored (the median of `--probes` incidents).
The SDK keeps at most `max_cached_workflows` (1,000 by default) workflows in memory; beyond it,
a workflow that wakes is replayed from its history. A script, not a test: it asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url
from temporalio.client import Client

from bench.gc_pauses import GcPauses
from bench.history_stages import stages
from bench.report import REGRESSION, commit, machine
from bench.temporal_server import KillableTemporal
from orchestrator.approvals.notifier import LogNotifier
from orchestrator.backends import workflow_id
from orchestrator.composition import open_checkpointer, open_store
from orchestrator.policy.model import PolicyDocument, Tier, load_policy
from orchestrator.runtime import settle_heap
from orchestrator.settings import GarrisonSettings, TemporalSettings
from orchestrator.store.records import ApprovalStatus
from orchestrator.store.repository import Store
from orchestrator.temporal.converter import DATA_CONVERTER
from orchestrator.worker import WorkerDeps, build_workers
from simulations.backends import memory_backends
from simulations.loader import LoadedIncident, load_all
from simulations.replay import ReplayContext, start_incident
from simulations.runner import replay_context, workflow_input
from tools.toolsets import ReadTools, ResponseTools

ROOT = Path(__file__).parents[1]
INCIDENT = ROOT / "simulations" / "incidents" / "otrf-lsass-procdump-acct01"
DAY_S = 86_400.0
IN_FLIGHT = 8  # incidents being opened at once
# Incidents opened before the benchmark waits for them to reach their approval. Opening them all
# at once (ingestion takes them far faster than the agents work) left ~4,000 in progress together
# on the way to 10,000, and incidents reached their approval at 0.7/s instead of 2/s.
WAVE = 100


class SharedTwins:
    """One set of twins for every incident (see the module's docstring)."""

    def __init__(self, loaded: LoadedIncident) -> None:
        self._read, self._response = memory_backends(loaded.spec.environment, loaded.telemetry())

    def read_tools(self, incident_id: str) -> ReadTools:
        return self._read

    def response_tools(self, incident_id: str) -> ResponseTools:
        return self._response


@dataclass
class SizeFigures:
    open_incidents: int
    worker_rss_mb: float
    temporal_rss_mb: float
    store_mb: float
    open_one_more_s: float  # median over the probes
    fill_s: float  # wall time to open the incidents since the previous size
    # The collector's pauses of this process (the worker) during the fill and the probes.
    gc_full: int  # full collections
    gc_full_max_s: float
    gc_total_s: float  # every generation
    # Where the probes' time went (`bench.history_stages`, the median over the probes of each
    # stage's seconds): queue waits and runs of workflow tasks and of each activity type.
    one_more_stages: dict[str, float] = field(default_factory=dict)


def waiting_policy() -> PolicyDocument:
    """Every isolation needs a human, who has a day: nothing times out during the run."""
    policy = load_policy(None)
    tiers = {
        name: Tier(
            sla_s=DAY_S,
            reminder_after_s=DAY_S / 2,
            escalation_wait_s=DAY_S,
            approver_group=tier.approver_group,
            escalation_group=tier.escalation_group,
        )
        for name, tier in policy.tiers.items()
    }
    return policy.model_copy(update={"threshold": 10, "tiers": tiers, "version": "bench-memory"})


def rss_mb(pid: int | str = "self") -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return float("nan")


async def pending_count(database: Path) -> int:
    """Incidents waiting for a human: an incident's round may request several approvals at once
    (parallel approvals), so requests are counted by incident, not one by one. Counted in SQL,
    on a read-only connection of its own: listing the pending requests (about 30,000 at 10,000
    incidents) twice a second would load them all into this process, which is also the worker."""

    def count() -> int:
        uri = f"file:{database.as_posix()}?mode=ro"
        with contextlib.closing(sqlite3.connect(uri, uri=True)) as connection:
            query = "SELECT COUNT(DISTINCT incident_id) FROM approvals WHERE status = ?"
            (found,) = connection.execute(query, (ApprovalStatus.PENDING.value,)).fetchone()
        return int(found)

    return await asyncio.to_thread(count)


class Opener:
    def __init__(
        self,
        ctx: ReplayContext,
        store: Store,
        settings: GarrisonSettings,
        policy: PolicyDocument,
        loaded: LoadedIncident,
    ) -> None:
        self.ctx, self.store, self.settings = ctx, store, settings
        self.policy, self.loaded = policy, loaded
        self.database = Path(str(make_url(settings.effective_database_url).database))
        self.opened = 0
        self.probes: list[str] = []  # the incidents `one_more` opened

    async def open(self) -> str:
        self.opened += 1
        incident_id = f"m{self.opened:06d}{uuid.uuid4().hex[:4]}--{self.loaded.spec.id}"
        params = workflow_input(self.settings, self.policy, incident_id, self.loaded.spec.title)
        await start_incident(self.ctx, self.loaded, incident_id, params)
        return incident_id

    async def fill(self, count: int) -> None:
        """Open `count` incidents in waves of `WAVE`, each wave waited for until all of its
        incidents wait for a human."""
        base = await pending_count(self.database)
        opened = 0
        while opened < count:
            wave = min(WAVE, count - opened)
            await self._open_wave(wave)
            opened += wave
            await _until_waiting(self.database, base + opened)

    async def _open_wave(self, count: int) -> None:
        """Open `count` incidents, `IN_FLIGHT` at a time."""
        queue = asyncio.Queue[None]()
        for _ in range(count):
            queue.put_nowait(None)

        async def opener() -> None:
            while not queue.empty():
                queue.get_nowait()
                await self.open()

        await asyncio.gather(*(opener() for _ in range(IN_FLIGHT)))

    async def one_more(self) -> float:
        """Seconds from handing one incident's alerts to ingestion to its approval stored."""
        started = time.perf_counter()
        incident_id = await self.open()
        self.probes.append(incident_id)

        async def stored() -> bool:
            return bool(await self.store.list_approvals(incident_id=incident_id))

        await _until(stored, interval_s=0.02)
        return time.perf_counter() - started


async def _until_waiting(database: Path, count: int) -> None:
    async def reached() -> bool:
        return await pending_count(database) >= count

    await _until(reached, interval_s=0.5)


async def _until(check: Callable[[], Awaitable[bool]], interval_s: float) -> None:
    """Poll `check` until it holds (the store is the benchmark's only view of the workers)."""
    for _ in range(int(3_600 / interval_s)):
        if await check():
            return
        await asyncio.sleep(interval_s)
    raise TimeoutError("not reached within an hour")


async def measure(
    sizes: list[int], probes: int, max_cached: int | None, settle_s: float
) -> list[SizeFigures]:
    loaded = load_all([INCIDENT]).incidents[0]
    policy = waiting_policy()
    figures: list[SizeFigures] = []
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp:
        temporal = KillableTemporal(Path(tmp) / "temporal")
        await temporal.start()
        try:
            client = await Client.connect(temporal.address, data_converter=DATA_CONVERTER)
            settings = GarrisonSettings(
                data_dir=Path(tmp) / "data",
                temporal=TemporalSettings(
                    address=temporal.address, task_queue_prefix=f"m{uuid.uuid4().hex[:6]}"
                ),
            )
            if max_cached is not None:
                settings.temporal.max_cached_workflows = max_cached
            pauses = GcPauses()
            async with AsyncExitStack() as stack:
                store = await open_store(settings)
                stack.push_async_callback(store.close)
                checkpointer = await stack.enter_async_context(open_checkpointer(settings))
                deps = WorkerDeps(store, SharedTwins(loaded), checkpointer, LogNotifier())
                for worker in build_workers(client, settings.temporal, deps):
                    await stack.enter_async_context(worker)
                ctx = replay_context(client, store, settings, policy, DAY_S)
                opener = Opener(ctx, store, settings, policy, loaded)
                settle_heap()  # as `garrison worker` does once it is up
                pauses.start()
                stack.callback(pauses.stop)
                open_now = 0
                for size in [0, *sizes]:
                    started = time.perf_counter()
                    if size > open_now:
                        await opener.fill(size - open_now)
                    fill_s = time.perf_counter() - started
                    open_now = max(size, open_now)
                    if size:  # the last wave's deliveries end before the probes start
                        await asyncio.sleep(settle_s)
                    times = [await opener.one_more() for _ in range(probes)]
                    probe_stages = await _stages(client, opener.probes[-probes:])
                    open_now += probes
                    gc_figures = pauses.take()
                    gc.collect()
                    figures.append(
                        SizeFigures(
                            open_incidents=size,
                            worker_rss_mb=rss_mb(),
                            temporal_rss_mb=rss_mb(temporal.pid() or "missing"),
                            store_mb=round(_disk_mb(settings.data_dir), 1),
                            open_one_more_s=round(statistics.median(times), 3),
                            fill_s=round(fill_s, 1),
                            gc_full=gc_figures.full,
                            gc_full_max_s=gc_figures.full_max_s,
                            gc_total_s=gc_figures.total_s,
                            one_more_stages=probe_stages,
                        )
                    )
                    print(_row(figures[-1]), flush=True)
        finally:
            await temporal.stop()
    return figures


async def _stages(client: Client, incident_ids: list[str]) -> dict[str, float]:
    """The median over the incidents of each stage's seconds, up to now (they wait for a human:
    everything before their approval request is in their histories)."""
    found = [
        stages(await client.get_workflow_handle(workflow_id(i)).fetch_history())
        for i in incident_ids
    ]
    names = sorted({name for one in found for name in one})
    medians = {name: statistics.median(one.get(name, 0.0) for one in found) for name in names}
    return {name: round(seconds, 4) for name, seconds in medians.items()}


def _disk_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 2**20


def _row(f: SizeFigures) -> str:
    return (
        f"{f.open_incidents:>6} open: worker {f.worker_rss_mb:7.1f} MB, temporal"
        f" {f.temporal_rss_mb:7.1f} MB, store {f.store_mb:6.1f} MB | one more"
        f" {f.open_one_more_s:.3f} s | filled in {f.fill_s:.0f} s | gc: {f.gc_full} full,"
        f" longest {f.gc_full_max_s:.3f} s, {f.gc_total_s:.1f} s in all\n"
        f"{'':>12}{_top_stages(f.one_more_stages)}"
    )


def _top_stages(found: dict[str, float], top: int = 8) -> str:
    ranked = sorted(((s, n) for n, s in found.items() if n != "total"), reverse=True)[:top]
    return ", ".join(f"{name} {seconds * 1000:.0f} ms" for seconds, name in ranked)


LOWER_IS_BETTER = ("worker_rss_mb", "temporal_rss_mb", "open_one_more_s")


def compare(now: list[dict[str, Any]], before: list[dict[str, Any]]) -> list[str]:
    old = {row["open_incidents"]: row for row in before}
    flagged: list[str] = []
    for row in now:
        base = old.get(row["open_incidents"])
        if base is None:
            continue
        for key in LOWER_IS_BETTER:
            a, b = base[key], row[key]
            if (
                isinstance(a, int | float)
                and isinstance(b, int | float)
                and a
                and b > a * (1 + REGRESSION)
            ):
                flagged.append(f"{row['open_incidents']} open {key}: {a} -> {b}")
    return flagged


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="memory with incidents waiting for approval")
    parser.add_argument("--sizes", default="1000,10000", help="open incidents, cumulative")
    parser.add_argument("--probes", type=int, default=5, help="one-more openings per size")
    parser.add_argument(
        "--settle",
        type=float,
        default=30.0,
        help="seconds between a fill and its probes: the last wave's ticket comments and "
        "approval cards are still being delivered when its incidents start waiting",
    )
    parser.add_argument("--out", type=Path, default=ROOT / ".garrison" / "bench-memory.json")
    parser.add_argument(
        "--max-cached", type=int, help="the workers' max_cached_workflows (default: Garrison's)"
    )
    parser.add_argument("--baseline", type=Path, help="a previous --out: flag >20%% regressions")
    args = parser.parse_args(argv)
    try:
        sizes = sorted({int(s) for s in args.sizes.split(",") if s.strip()})
    except ValueError:
        parser.error(f"--sizes: whole numbers separated by commas, not {args.sizes!r}")
    if any(s <= 0 for s in sizes) or args.probes < 1:
        parser.error("--sizes must be positive and --probes at least 1")
    figures = asyncio.run(measure(sizes, args.probes, args.max_cached, args.settle))
    rows = [asdict(f) for f in figures]
    report: dict[str, Any] = {
        "benchmark": "memory-waiting-incidents",
        "machine": machine(),
        "commit": commit(ROOT),
        "incident": INCIDENT.name,
        "settle_s": args.settle,
        "sizes": rows,
    }
    if args.baseline is not None:
        before = json.loads(args.baseline.read_text(encoding="utf-8"))["sizes"]
        report["regressions"] = compare(rows, before)
        for line in report["regressions"] or ["no figure more than 20% worse than the baseline"]:
            print(line)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
