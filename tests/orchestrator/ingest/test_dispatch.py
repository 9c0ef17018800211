"""The dispatcher on the real Temporal dev server: it signal-with-starts an incident's workflow
with its committed alerts once and marks them signalled; alerts that reach an incident whose
workflow has already closed stay with that incident, audited, and never start a run by accident
(here a workflow that was terminated: there is no run to resume, so nothing reopens it)."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from orchestrator.ingest.dispatch import Dispatcher
from orchestrator.ingest.pipeline import Ingestor
from orchestrator.ingest.sink import Backpressure
from orchestrator.models import ActivityProfile, AlertsAdded, IncidentWorkflowInput
from orchestrator.policy.model import IngestRules, load_policy
from orchestrator.store.records import IncidentRecord
from orchestrator.store.repository import Store
from tests.orchestrator.store.test_store_intake import alert

pytestmark = pytest.mark.temporal


def inputs(queue: str):
    policy = load_policy(None)

    def build(incident: IncidentRecord) -> IncidentWorkflowInput:
        return IncidentWorkflowInput(
            incident_id=incident.id,
            group_key=incident.group_key,
            title=incident.title,
            policy=policy,
            requester="garrison-agent",
            activity=ActivityProfile(),
            task_queue_agents=f"{queue}-agents",
            task_queue_actions=f"{queue}-actions",
        )

    return build


async def test_dispatch_signals_once_and_late_alerts_of_a_closed_workflow_stay_with_it(
    temporal_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    store = await Store.open(f"sqlite:///{tmp_path / 'g.db'}")
    queue = f"dispatch-{uuid.uuid4().hex[:6]}"  # no worker polls it: workflows stay open
    dispatcher = Dispatcher(temporal_env.client, store, inputs(queue), f"{queue}-triage")
    ingest = Ingestor(store, IngestRules())
    try:
        first = await ingest.accept([alert("a1"), alert("a2", minutes=1)], scope="t")
        [incident] = first.incidents
        assert await dispatcher.dispatch_pending() == 2
        assert await store.intake.unsignalled(10) == []
        assert await dispatcher.dispatch_pending() == 0  # nothing twice
        handle = temporal_env.client.get_workflow_handle(f"incident-{incident}")
        assert (await handle.describe()).close_time is None

        await handle.terminate("closed for the test")  # the store still says open: the race
        late = await ingest.accept(
            [alert("a3", minutes=2), alert("a4", user="CORP\\bob", minutes=3)], scope="t"
        )
        assert late.incidents == [incident]
        assert await dispatcher.dispatch_pending() == 2
        assert await store.intake.unsignalled(10) == []
        assert [a.uid for a in await store.alerts_for(incident)] == ["a1", "a2", "a3", "a4"]
        assert [i.id for i in await store.list_incidents()] == [incident]
        runs = [
            w async for w in temporal_env.client.list_workflows(f'WorkflowId="incident-{incident}"')
        ]
        assert len(runs) == 1  # the terminated run, and no other
        audit = await store.audit_entries(incident_id=incident)
        [entry] = [e for e in audit if e.type == "incident.alerts_after_close"]
        assert entry.outcome == "attached" and "TERMINATED" in str(entry.detail["reason"])
    finally:
        await ingest.aclose()
        await store.close()


async def test_a_backlog_beyond_the_bound_is_refused_with_retry_after(tmp_path: Path) -> None:
    store = await Store.open(f"sqlite:///{tmp_path / 'g.db'}")
    ingest = Ingestor(store, IngestRules(), max_backlog=10)
    try:
        ingest.backlog = 11  # as the dispatcher reports it after a pass
        with pytest.raises(Backpressure) as refused:
            await ingest.accept([alert("a1")])
        assert refused.value.retry_after_s > 0 and "behind" in refused.value.reason
        assert await store.list_incidents() == []
        ingest.backlog = 0
        assert (await ingest.accept([alert("a1")])).alert_ids
    finally:
        await store.close()


async def test_alerts_within_the_signal_gap_reach_a_running_workflow_in_one_later_signal(
    temporal_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    store = await Store.open(f"sqlite:///{tmp_path / 'g.db'}")
    queue = f"gap-{uuid.uuid4().hex[:6]}"  # no worker polls it: workflows stay open
    gap_s = 1.5
    dispatcher = Dispatcher(
        temporal_env.client, store, inputs(queue), f"{queue}-triage", signal_gap_s=gap_s
    )
    ingest = Ingestor(store, IngestRules(), on_commit=dispatcher.poke)
    loop = asyncio.get_running_loop()
    running = asyncio.create_task(dispatcher.run())
    try:
        started_at = loop.time()
        [incident] = (await ingest.accept([alert("a1")], scope="t")).incidents
        await _until_signalled(store)  # the start is never deferred
        assert loop.time() - started_at < gap_s
        for uid, minutes in (("a2", 1), ("a3", 2)):  # a burst, one commit each
            await ingest.accept([alert(uid, minutes=minutes)], scope="t")
            await asyncio.sleep(0.2)
        assert {row.alert_uid for row in await store.intake.unsignalled(10)} == {"a2", "a3"}
        await _until_signalled(store)  # after the gap, by the dispatcher's own wake-up
        handle = temporal_env.client.get_workflow_handle(f"incident-{incident}")
        history = await handle.fetch_history()
        signals = [
            e.workflow_execution_signaled_event_attributes
            for e in history.events
            if e.HasField("workflow_execution_signaled_event_attributes")
        ]
        assert len(signals) == 2  # the start's, then one for the burst
        burst = await _signal_uids(temporal_env, signals[1])
        assert burst == ["a2", "a3"]
    finally:
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running
        await ingest.aclose()
        await store.close()


async def _until_signalled(store: Store, timeout_s: float = 10.0) -> None:
    async with asyncio.timeout(timeout_s):
        while await store.intake.unsignalled(10):  # noqa: ASYNC110
            await asyncio.sleep(0.05)


async def _signal_uids(env: WorkflowEnvironment, signal: object) -> list[str]:
    [payload] = signal.input.payloads  # type: ignore[attr-defined]
    [added] = await env.client.data_converter.decode([payload], [AlertsAdded])
    return list(added.alert_uids)
