"""Waiting for a scenario's incidents to settle, and what ingestion and the agents cost Temporal:
the helpers scenarios use around `verify_run()`."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from orchestrator.composition import open_store
from orchestrator.settings import GarrisonSettings
from orchestrator.store.records import ApprovalStatus
from orchestrator.store.repository import Store
from tests.scenarios.oracle import workflow_statuses
from tools.models import IncidentStatus


async def wait_settled(
    settings: GarrisonSettings,
    scope: str,
    timeout_s: float,
    *,
    pending_counts: bool = True,
    poll_s: float = 1.0,
) -> float:
    """Seconds until every incident of `scope` is closed or (when `pending_counts`) has a
    pending approval, and nothing waits in the dispatch outbox; raises TimeoutError with what is
    still moving. With analysts answering, `pending_counts=False` waits for every close."""
    started = time.monotonic()
    moving: list[str] = []
    store = await open_store(settings)
    try:
        while time.monotonic() - started < timeout_s:
            moving = await _moving(store, scope, pending_counts)
            if not moving and not await store.intake.backlog():
                return time.monotonic() - started
            await asyncio.sleep(poll_s)
    finally:
        await store.close()
    raise TimeoutError(f"not settled after {timeout_s:.0f}s: {len(moving)} incidents {moving[:5]}")


async def _moving(store: Store, scope: str, pending_counts: bool) -> list[str]:
    pending = (
        {a.incident_id for a in await store.list_approvals(ApprovalStatus.PENDING)}
        if pending_counts
        else set()
    )
    return [
        i.id
        for i in await store.list_incidents(limit=10_000_000)
        if i.id.startswith(f"{scope}-")
        and i.status is not IncidentStatus.CLOSED
        and i.id not in pending
    ]


@dataclass(frozen=True)
class Deliveries:
    """What ingestion and the agents cost Temporal, read from the workflows' histories."""

    workflows: int
    starts: int  # first runs (a signal-with-start is one start and one signal)
    signals: int  # `alerts_added` signals received
    triage_calls: int  # `agents.triage` activities scheduled


async def deliveries(client: Client, task_queue: str) -> Deliveries:
    statuses = await workflow_statuses(client, task_queue)
    signals = triages = 0
    for wid in statuses:
        history = await client.get_workflow_handle(wid).fetch_history()
        for event in history.events:
            if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
                signals += event.workflow_execution_signaled_event_attributes.signal_name == (
                    "alerts_added"
                )
            elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
                name = event.activity_task_scheduled_event_attributes.activity_type.name
                triages += name == "agents.triage"
    return Deliveries(len(statuses), len(statuses), signals, triages)
