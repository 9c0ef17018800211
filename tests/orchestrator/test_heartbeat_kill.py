"""A real `garrison worker` SIGKILLed in the middle of `response.execute` (CrowdStrike has applied
the containment and holds its answer) has the activity retried within its kind's heartbeat
timeout plus a few seconds, not after its start-to-close timeout (300 s here; before heartbeats,
every kill mid-activity cost up to that). The retry finds the host contained after its own
earlier attempt sent the change, and records Garrison's containment, once: executed, not
"already in that state". The measured delay is printed (`pytest -s`)."""

from __future__ import annotations

import asyncio
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from temporalio.api.enums.v1 import EventType, TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment

from orchestrator.backends import workflow_id
from orchestrator.composition import open_store
from orchestrator.policy.model import load_policy
from orchestrator.settings import (
    ActivitiesSettings,
    GarrisonSettings,
    KindSettings,
    TemporalSettings,
)
from orchestrator.store import ActionStatus
from orchestrator.temporal.client import Role, task_queue
from simulations.analyst import SimulatedAnalyst
from simulations.loader import load_all
from simulations.replay import replay_incident
from simulations.runner import replay_context, workflow_input
from simulations.spec import AnalystPolicy, AnalystSpec
from tests.orchestrator.processes import clean_environment, kill_group, spawn_garrison, wait_for
from tests.orchestrator.test_crash_recovery_vendors import INCIDENT, emulated_vendors
from tools.emulators.base import EmulatorFaults

pytestmark = [pytest.mark.temporal, pytest.mark.slow]

HEARTBEAT_S = 5.0
START_TO_CLOSE_S = 300.0
_TRANSIENT = (
    RPCStatusCode.CANCELLED,
    RPCStatusCode.DEADLINE_EXCEEDED,
    RPCStatusCode.UNAVAILABLE,
)
SLACK_S = 8.0  # retry backoff (1 s), the server's timer and dispatch, a loaded machine


async def polling(client: Client, queue: str, pid: int) -> bool:
    """Whether the process `pid` polls the activity task queue `queue` (its worker is up). A
    describe the loaded dev server cancelled or timed out says nothing yet: False, ask again."""
    try:
        answer = await client.workflow_service.describe_task_queue(
            DescribeTaskQueueRequest(
                namespace=client.namespace,
                task_queue=TaskQueue(name=queue),
                task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
            )
        )
    except RPCError as error:
        if error.status not in _TRANSIENT:
            raise
        return False
    return any(p.identity.startswith(f"{pid}@") for p in answer.pollers)


async def execute_started_at(client: Client, incident_id: str) -> list[tuple[int, float]]:
    """(attempt, start time) of the `response.execute` activities that started, from history."""
    history = await client.get_workflow_handle(workflow_id(incident_id)).fetch_history()
    scheduled = {
        e.event_id
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
        and e.activity_task_scheduled_event_attributes.activity_type.name == "response.execute"
    }
    return [
        (e.activity_task_started_event_attributes.attempt, e.event_time.ToDatetime().timestamp())
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED
        and e.activity_task_started_event_attributes.scheduled_event_id in scheduled
    ]


async def test_a_worker_killed_mid_execute_is_retried_within_the_heartbeat_timeout(
    temporal_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    loaded = load_all([INCIDENT]).incidents[0]
    client = temporal_env.client
    prefix = f"hbkill-{uuid.uuid4().hex[:8]}"
    address = client.service_client.config.target_host
    inventory = tmp_path / "inventory.json"
    inventory.write_text(loaded.spec.environment.model_dump_json(), encoding="utf-8")
    settings = GarrisonSettings(
        data_dir=tmp_path / "data",
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'garrison.db'}",
        temporal=TemporalSettings(address=address, task_queue_prefix=prefix),
        activities=ActivitiesSettings(
            vendor_actions=KindSettings(start_to_close_s=START_TO_CLOSE_S, heartbeat_s=HEARTBEAT_S)
        ),
    )
    actions_queue = task_queue(settings.temporal, Role.ACTIONS)
    hang = {"crowdstrike": EmulatorFaults(hang_after_apply={"contain"})}
    async with emulated_vendors(loaded, hang) as (vendor_env, states):
        env = (
            clean_environment()
            | vendor_env
            | {
                "GARRISON_DATA_DIR": str(settings.data_dir),
                "GARRISON_DATABASE_URL": str(settings.database_url),
                "GARRISON_TEMPORAL_ADDRESS": address,
                "GARRISON_TEMPORAL_TASK_QUEUE_PREFIX": prefix,
                "GARRISON_INVENTORY_FILE": str(inventory),
                # The hung containment call must still be in flight when the worker is killed:
                # with the default 30 s the adapter timed out first on a loaded machine, and the
                # activity retried on its own before the kill.
                "GARRISON_CROWDSTRIKE_TIMEOUT_S": str(START_TO_CLOSE_S),
            }
        )
        policy = load_policy(None)
        store = await open_store(settings)
        incident_id = f"hbkill-{uuid.uuid4().hex[:6]}--{loaded.spec.id}"
        params = workflow_input(settings, policy, incident_id, loaded.spec.title)
        analyst = SimulatedAnalyst(
            spec=AnalystSpec(policy=AnalystPolicy.ORACLE, latency_s=60), truth=loaded.spec.truth
        )
        ctx = replay_context(client, store, settings, policy, timeout_s=240)
        first = spawn_garrison("worker", env=env)
        second: subprocess.Popen[bytes] | None = None
        try:
            run = asyncio.create_task(replay_incident(ctx, loaded, incident_id, params, analyst))
            await wait_for(lambda: states["crowdstrike"].state_changes > 0, 120)
            # A second worker, polling before the kill, so its start-up is not what is measured.
            second = spawn_garrison("worker", env=env)
            deadline = time.monotonic() + 90
            while not await polling(client, actions_queue, second.pid):
                assert time.monotonic() < deadline, "the second worker never polled"
                await asyncio.sleep(0.2)
            killed_at = time.time()
            kill_group(first)
            outcome = await run
            started = await execute_started_at(client, incident_id)
            ledger = await store.actions_for(incident_id)
        finally:
            kill_group(first)
            if second is not None:
                kill_group(second)
            await store.close()

    assert outcome.error is None, outcome.error
    assert outcome.result is not None
    isolation = [e for e in outcome.result.executed if e.action.kind.value == "isolate_host"]
    retried = [t for attempt, t in started if attempt > 1]
    assert retried, f"no retried response.execute in {started}"
    # The kill interrupted the first attempt: no retry started before it (a retry before the kill
    # would be the adapter's own timeout, not the heartbeat, and not what this test measures).
    early = [t for t in retried if t < killed_at]
    assert not early, f"retried before the kill at {killed_at}: {started}"
    delay = min(retried) - killed_at
    print(f"\nkill -> retried response.execute started: {delay:.1f} s (heartbeat {HEARTBEAT_S} s)")
    assert 0 < delay < HEARTBEAT_S + SLACK_S
    # Garrison's own containment, once: executed on the retry, not "already in that state".
    assert [e.already_in_state for e in isolation] == [False]
    contain = [r for r in ledger if r.kind.value == "isolate_host"]
    assert [(r.status, r.already_in_state, r.attempts) for r in contain] == [
        (ActionStatus.SUCCEEDED, False, 1)
    ]
    assert "earlier attempt" in contain[0].outcome
