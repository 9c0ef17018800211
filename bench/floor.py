"""The floor of issue 17: a bare Temporal workflow of an incident's shape, with no work inside.

Three activities (triage, investigation, proposal), a wait for an approval signal, one more
activity (the action), on the same dev server and with the same SDK settings as Garrison. The
driver is the simulator's: start, poll the workflow's status until it waits for approval, signal,
await the result. What the pipeline costs above this is Garrison's own."""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.worker import Worker

POLL_S = 0.05  # the simulator's own status poll (`simulations.replay.POLL_S`)
TIMEOUT = timedelta(seconds=30)


@activity.defn(name="floor.step")
async def step(name: str) -> str:
    return name


@workflow.defn(name="FloorIncident")
class FloorIncident:
    def __init__(self) -> None:
        self._approved = False
        self._waiting = False

    @workflow.run
    async def run(self, incident_id: str) -> str:
        for name in ("triage", "investigate", "propose"):
            await workflow.execute_activity(step, name, start_to_close_timeout=TIMEOUT)
        self._waiting = True
        await workflow.wait_condition(lambda: self._approved)
        self._waiting = False
        await workflow.execute_activity(step, "execute", start_to_close_timeout=TIMEOUT)
        return incident_id

    @workflow.query
    def waiting(self) -> bool:
        return self._waiting

    @workflow.signal
    def approve(self) -> None:
        self._approved = True


@dataclass(frozen=True)
class FloorFigures:
    workflows: int
    concurrency: int
    wall_s: float
    per_s: float


async def run_floor(client: Client, workflows: int, concurrency: int) -> FloorFigures:
    """`workflows` floor incidents, `concurrency` at a time (as `garrison simulate` runs them)."""
    queue = f"floor-{uuid.uuid4().hex[:8]}"
    gate = asyncio.Semaphore(concurrency)

    async def one(n: int) -> None:
        async with gate:
            handle = await client.start_workflow(
                FloorIncident.run, f"f{n}", id=f"{queue}-{n}", task_queue=queue
            )
            # the simulator's own poll, measured as it is (`simulations.replay._drive`)
            while not await handle.query(FloorIncident.waiting):  # noqa: ASYNC110
                await asyncio.sleep(POLL_S)
            await handle.signal(FloorIncident.approve)
            await handle.result()

    async with Worker(client, task_queue=queue, workflows=[FloorIncident], activities=[step]):
        started = time.perf_counter()
        await asyncio.gather(*(one(n) for n in range(workflows)))
        wall = time.perf_counter() - started
    return FloorFigures(workflows, concurrency, round(wall, 3), round(workflows / wall, 3))
