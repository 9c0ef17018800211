"""Pull mode on a real Temporal dev server: a Schedule triggers `AlertPollWorkflow`, whose
`ingest.poll` activity reads the Falcon emulator (through a 429, retried after its Retry-After)
into a recording sink; `ensure_poll_schedules` is idempotent and removes unconfigured sources."""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio.client import Client
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from orchestrator.activities.ingest import PollActivities
from orchestrator.ingest.pollers.models import PollSource
from orchestrator.ingest.pollers.schedules import ensure_poll_schedules, schedule_id
from orchestrator.settings import PollSettings
from orchestrator.workflows.poll import AlertPollWorkflow
from tests.orchestrator.ingest.poll_kit import (
    T0,
    DeadLetters,
    RecordingSink,
    make_alert,
    open_store,
    vendor,
    wait_for_uids,
)

pytestmark = pytest.mark.temporal

SETTINGS = PollSettings(
    falcon_interval_s=3600, page_size=2, max_pages=5, initial_lookback_s=0, settle_s=0
)


async def _gone(client: Client, source: PollSource) -> bool:
    try:
        await client.get_schedule_handle(schedule_id(source)).describe()
    except RPCError:
        return True
    return False


async def test_a_triggered_schedule_polls_through_a_429_into_the_sink(
    temporal_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    client, queue = temporal_env.client, f"poll-{uuid.uuid4().hex[:8]}"
    store = await open_store(tmp_path)
    sink, dead = RecordingSink(), DeadLetters()
    async with vendor(PollSource.FALCON) as v:
        ids = [v.add(make_alert(n), T0 + timedelta(seconds=n)) for n in range(5)]
        v.state.faults.rate_limit_429, v.state.faults.retry_after_s = 1, 1
        activities = PollActivities(store, sink, dead, {PollSource.FALCON: v.feed})
        async with Worker(
            client, task_queue=queue, workflows=[AlertPollWorkflow], activities=[activities.poll]
        ):
            await ensure_poll_schedules(client, SETTINGS, queue)
            try:
                handle = client.get_schedule_handle(schedule_id(PollSource.FALCON))
                await handle.trigger()
                await wait_for_uids(sink, len(ids))
            finally:
                await ensure_poll_schedules(client, PollSettings(), queue)
    await store.close()
    assert sink.uids == ids
    statuses = [entry.status for entry in v.state.ledger]
    assert statuses[0] == 429 and 200 in statuses[1:]
    retried = next(e for e in v.state.ledger[1:] if e.status != 429)
    assert (retried.at - v.state.ledger[0].at).total_seconds() >= 0.9  # after Retry-After
    assert await _gone(client, PollSource.FALCON)


async def test_ensure_poll_schedules_twice_keeps_one_schedule_per_source(
    temporal_env: WorkflowEnvironment,
) -> None:
    client, queue = temporal_env.client, f"poll-{uuid.uuid4().hex[:8]}"
    both = SETTINGS.model_copy(update={"graph_interval_s": 600})
    try:
        first = await ensure_poll_schedules(client, both, queue)
        second = await ensure_poll_schedules(
            client, both.model_copy(update={"falcon_interval_s": 120}), queue
        )
        assert first == second == [schedule_id(PollSource.FALCON), schedule_id(PollSource.GRAPH)]
        described = await client.get_schedule_handle(schedule_id(PollSource.FALCON)).describe()
        intervals = described.schedule.spec.intervals
        assert [i.every for i in intervals] == [timedelta(seconds=120)]  # updated, not added
        assert await ensure_poll_schedules(client, SETTINGS, queue) == [
            schedule_id(PollSource.FALCON)
        ]
        assert await _gone(client, PollSource.GRAPH)
    finally:
        await ensure_poll_schedules(client, PollSettings(), queue)
    assert await _gone(client, PollSource.FALCON)
