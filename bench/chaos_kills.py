"""What the chaos run does to the deployment (`bench/chaos.py`), and what it saw happen:

- `Keeper`: the server and the workers are kept running; whatever is dead is started again at
  once (a killed process, or one killed while it was starting), and a process that exited
  without being killed is recorded (`died_alone`), with the last line of its log;
- `kill_loop`: every `--kill-every` (2 to 5 s, drawn at random) one kill: a worker SIGKILLed,
  or at their scheduled times the Temporal server (SIGKILLed, started again on its database
  `down_s` later), the store's writers (the ingesting server and every worker SIGKILLed at once)
  and, on PostgreSQL, the writers' database sessions terminated (`pg_terminate_backend`, six
  times 0.5 s apart, the states the sessions were cut in recorded: `active` and
  `idle in transaction` are cut mid-write);
- `fault_loop`: the emulators' fault knobs turned in turn over `PUT /_faults` (an outage, 5xx,
  429 with Retry-After, latency, a change applied and its answer dropped) and cleared again.

Every event has its epoch time, so `chaos_figures.recovery` can measure each kill's recovery.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from bench.chaos_deploy import ChaosStack, terminate_backends
from bench.temporal_server import KillableTemporal

SERVER = "server"
PG_BURST, PG_BURST_GAP_S = 6, 0.5
# (vendor, knobs, seconds before they are cleared; 0: counters, consumed by requests)
FAULTS: tuple[tuple[str, dict[str, Any], float], ...] = (
    ("crowdstrike", {"fail_5xx": 3}, 0),
    ("jira", {"down": True}, 20),
    ("okta", {"rate_limit_429": 2, "retry_after_s": 2}, 0),
    ("crowdstrike", {"reset_after_apply": ["contain"]}, 15),
    ("jira", {"reset_after_apply": ["add_comment", "create_issue"]}, 15),
    ("panos", {"latency_ms": 3000}, 15),
    ("okta", {"reset_after_apply": ["suspend"]}, 15),
    ("panos", {"reset_after_apply": ["set"]}, 15),
)


@dataclass
class ChaosLog:
    kills: list[dict[str, Any]] = field(default_factory=list)  # kind, target, at, back_at
    ready: list[tuple[str, float]] = field(default_factory=list)  # a process answering again
    died_alone: list[dict[str, Any]] = field(default_factory=list)
    start_failures: list[dict[str, Any]] = field(default_factory=list)  # exited before ready
    errors: list[str] = field(default_factory=list)  # a kill that could not be carried out
    faults: list[dict[str, Any]] = field(default_factory=list)

    def back_at(self, names: Sequence[str], after: float) -> float | None:
        """When every one of `names` had answered again after `after`."""
        times = [
            min((t for n, t in self.ready if n == name and t > after), default=None)
            for name in names
        ]
        return None if not times or None in times else max(t for t in times if t is not None)


class Keeper:
    """Keeps the stack's server and workers running (module docstring)."""

    def __init__(self, stack: ChaosStack, workers: Sequence[str], log: ChaosLog) -> None:
        self.stack = stack
        self.names = [SERVER, *workers]
        self.workers = list(workers)
        self.log = log
        self.killed: set[str] = set()
        self.starting: set[str] = set()
        self.answered: set[str] = set()  # whose current process reached `ready`
        self._tasks: set[asyncio.Task[None]] = set()

    def kill(self, name: str) -> None:
        self.killed.add(name)
        self.stack.kill(name)

    def up(self) -> bool:
        return all(self.stack.alive(n) and n not in self.starting for n in self.names)

    async def run(self) -> None:
        """Until cancelled."""
        try:
            while True:
                for name in self.names:
                    if name in self.starting or self.stack.alive(name):
                        continue
                    if name in self.stack.processes and name not in self.killed:
                        self._died(name)
                    self.killed.discard(name)
                    self.starting.add(name)
                    task = asyncio.create_task(self._start(name))
                    self._tasks.add(task)
                    task.add_done_callback(self._tasks.discard)
                await asyncio.sleep(0.2)
        finally:
            for task in list(self._tasks):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    def _died(self, name: str) -> None:
        """An exit nobody asked for: after the process answered (`died_alone`), or while it was
        starting (`start_failures`: a worker cannot start while Temporal is down)."""
        process = self.stack.processes[name]
        lines = self.stack.tail(name, 5).splitlines()
        seen = {"name": name, "at": time.time(), "code": process.returncode, "last": lines[-1:]}
        if name in self.answered:
            self.log.died_alone.append(seen)
        else:
            self.log.start_failures.append(seen)

    async def _start(self, name: str) -> None:
        self.answered.discard(name)
        try:
            if name == SERVER:
                await self.stack.start_server()
            else:
                await self.stack.start_worker(name)
            self.answered.add(name)
            self.log.ready.append((name, time.time()))
        except RuntimeError:
            pass  # killed while starting, or it exited: the loop sees it and starts it again
        finally:
            self.starting.discard(name)

    async def wait_up(self, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while not self.up():
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.5)
        return True


@dataclass(frozen=True)
class Plan:
    minutes: float
    every_s: tuple[float, float]
    temporal_kills: int
    temporal_down_s: float
    store_kills: int
    database_url: str | None  # PostgreSQL: its sessions are terminated too


def special_times(plan: Plan) -> list[tuple[float, str]]:
    """(seconds from the start, kind): Temporal at i/(n+1) of the run, the store's writers
    evenly between, offset so that no two land together; on PostgreSQL a session cut after each
    writers' kill, a third of the way to the next."""
    run_s = plan.minutes * 60
    times = [
        (run_s * (i + 1) / (plan.temporal_kills + 1), "temporal")
        for i in range(plan.temporal_kills)
    ]
    for i in range(plan.store_kills):
        at = run_s * (i + 0.6) / (plan.store_kills + 0.5)
        times.append((at, "writers"))
        if plan.database_url is not None:
            times.append((at + run_s / (plan.store_kills + 0.5) / 3, "pg_sessions"))
    return sorted(t for t in times if t[0] < run_s)


async def kill_loop(
    plan: Plan, keeper: Keeper, temporal: KillableTemporal, log: ChaosLog, rng: random.Random
) -> None:
    """A kill every `every_s` (drawn) until the run's end; the scheduled ones on their turn."""
    started = time.time()
    end = started + plan.minutes * 60
    specials = special_times(plan)
    strikes: list[asyncio.Task[None]] = []
    at = started + rng.uniform(*plan.every_s)
    try:
        while at < end:
            await asyncio.sleep(max(0.0, at - time.time()))
            kind = "worker"
            if specials and started + specials[0][0] <= time.time():
                kind = specials.pop(0)[1]
            strike = _strike(kind, plan, keeper, temporal, log, rng)
            strikes.append(asyncio.create_task(_recorded(strike, kind, log)))
            at += rng.uniform(*plan.every_s)
        await asyncio.gather(*strikes)
    finally:
        for task in strikes:
            task.cancel()


async def _recorded(strike: Any, kind: str, log: ChaosLog) -> None:
    try:
        await strike
    except Exception as error:
        log.errors.append(f"{kind}: {type(error).__name__}: {error}"[:300])


async def _strike(
    kind: str,
    plan: Plan,
    keeper: Keeper,
    temporal: KillableTemporal,
    log: ChaosLog,
    rng: random.Random,
) -> None:
    stack = keeper.stack
    at = time.time()
    if kind == "worker":
        alive = [n for n in keeper.workers if stack.alive(n)]
        if not alive:
            return  # all of them are being started again
        name = rng.choice(alive)
        keeper.kill(name)
        log.kills.append({"kind": kind, "target": name, "at": at})
    elif kind == "writers":
        alive = [n for n in keeper.names if stack.alive(n)]
        for name in alive:
            keeper.kill(name)
        log.kills.append({"kind": kind, "target": "+".join(alive), "at": at})
    elif kind == "temporal":
        entry: dict[str, Any] = {"kind": kind, "target": "temporal", "at": at}
        log.kills.append(entry)
        await temporal.kill_and_restart(plan.temporal_down_s)
        entry["back_at"] = time.time()
    elif kind == "pg_sessions" and plan.database_url is not None:
        cut: Counter[str] = Counter()
        for _ in range(PG_BURST):  # a burst, so that some sessions are cut inside a transaction
            cut.update(await asyncio.to_thread(terminate_backends, plan.database_url))
            await asyncio.sleep(PG_BURST_GAP_S)
        back = time.time()  # the store answers new sessions at once; the burst ends here
        log.kills.append(
            {"kind": kind, "target": "store sessions", "at": at, "back_at": back, "cut": dict(cut)}
        )


async def fault_loop(urls: dict[str, str], every_s: float, log: ChaosLog) -> None:
    """Turn the knobs of `FAULTS` in turn, one every `every_s`, until cancelled; every knob is
    cleared on the way out."""
    async with httpx.AsyncClient(timeout=10) as http:
        try:
            for n in range(10_000):
                await asyncio.sleep(every_s)
                vendor, knobs, hold_s = FAULTS[n % len(FAULTS)]
                answer = await http.put(f"{urls[vendor]}/_faults", json=knobs)
                log.faults.append(
                    {
                        "vendor": vendor,
                        "knobs": knobs,
                        "at": time.time(),
                        "status": answer.status_code,
                    }
                )
                if hold_s:
                    await asyncio.sleep(hold_s)
                    await http.delete(f"{urls[vendor]}/_faults")
        finally:
            for url in urls.values():
                with contextlib.suppress(httpx.HTTPError):
                    await http.delete(f"{url}/_faults")
