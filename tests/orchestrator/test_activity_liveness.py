"""Activities on a real Temporal dev server, with the worker's `LivenessInterceptor`:

- a retried failure whose text is megabytes long keeps its real cause (type and the beginning of
  its message), where Temporal alone would record "Failure exceeds size limit";
- `response.execute` whose last attempt dies without a word (its worker gone: here a
  start-to-close timeout) has its ledger entry ended `failed` by the workflow (`response.end`);
- a workflow cancelled while `response.execute` waits on the vendor leaves it `abandoned`.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from temporalio import activity
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Interceptor, Worker

from orchestrator.activities.errors import MAX_MESSAGE_CHARS
from orchestrator.activities.liveness import LivenessInterceptor
from orchestrator.activities.response import ResponseActivities
from orchestrator.models import (
    ActivityKind,
    ActivityProfile,
    ExecuteActionInput,
    KindTimeouts,
)
from orchestrator.store import ActionStatus, Store
from tests.orchestrator.liveness_workflows import (
    ExecuteOnce,
    ExecuteOnceInput,
    FailureSeen,
    FailureSeenWorkflow,
)
from tests.orchestrator.response_fakes import ACTION, INCIDENT, KEY, FirewallOnly
from tests.orchestrator.response_fakes import FlakyFirewall as HangingFirewall
from tools.errors import TransientToolError

pytestmark = pytest.mark.temporal

# The message, and its cause's: over the dev server's 2 MB limit on a failure, under gRPC's 4 MB.
HUGE = 1_200_000


@activity.defn(name="test.fail")
async def fail_with_a_huge_text() -> None:
    """What a vendor's 3 MB error page, carried into an exception, looks like."""
    page = "<html>" + "x" * HUGE
    try:
        raise TransientToolError(f"jira: 503 Service Unavailable: {page}")
    except TransientToolError as error:
        raise ValueError(f"ticket not opened: {error}") from error


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    store = await Store.open(f"sqlite:///{tmp_path / 'garrison.db'}")
    yield store
    await store.close()


async def failure_seen(env: WorkflowEnvironment, interceptors: list[Interceptor]) -> FailureSeen:
    queue = f"liveness-{uuid.uuid4().hex[:8]}"
    async with Worker(
        env.client,
        task_queue=queue,
        workflows=[FailureSeenWorkflow],
        activities=[fail_with_a_huge_text],
        interceptors=interceptors,
    ):
        return await env.client.execute_workflow(
            FailureSeenWorkflow.run, queue, id=f"liveness-{queue}", task_queue=queue
        )


async def test_a_retried_huge_failure_keeps_its_real_cause(
    temporal_env: WorkflowEnvironment,
) -> None:
    seen = await failure_seen(temporal_env, [LivenessInterceptor()])

    assert seen.type == "ValueError"
    assert seen.message.startswith("ticket not opened: jira: 503 Service Unavailable: <html>xxx")
    assert len(seen.message) < MAX_MESSAGE_CHARS + 100
    assert seen.cause_type == "TransientToolError"
    assert (seen.cause_message or "").startswith("jira: 503 Service Unavailable")


async def test_without_the_bound_temporal_loses_the_cause(
    temporal_env: WorkflowEnvironment,
) -> None:
    """What the bound prevents (so the test above can fail)."""
    seen = await failure_seen(temporal_env, [])

    assert "ticket not opened" not in seen.message
    assert "size limit" in seen.message.lower()


def actions_profile(**timeouts: float | None) -> ActivityProfile:
    values = {"start_to_close_s": 2.0, "heartbeat_s": None, "max_attempts": 1} | timeouts
    kinds = {
        ActivityKind.VENDOR_ACTIONS: KindTimeouts.model_validate(values),
        ActivityKind.STORE: KindTimeouts(start_to_close_s=10, heartbeat_s=5, max_attempts=3),
    }
    return ActivityProfile(kinds=kinds)


def execute_input(profile: ActivityProfile) -> ExecuteOnceInput:
    request = ExecuteActionInput(incident_id=INCIDENT, action=ACTION, risk=40, policy_version="p1")
    return ExecuteOnceInput(profile=profile, request=request)


async def test_an_execute_whose_last_attempt_dies_is_ended_failed(
    temporal_env: WorkflowEnvironment, store: Store
) -> None:
    firewall = HangingFirewall()
    firewall.hanging = True  # the vendor never answers; the attempt times out, unrecorded
    activities = ResponseActivities(store, FirewallOnly(firewall))  # type: ignore[arg-type]
    queue = f"liveness-{uuid.uuid4().hex[:8]}"
    async with Worker(
        temporal_env.client,
        task_queue=queue,
        workflows=[ExecuteOnce],
        activities=[activities.execute, activities.end],
        interceptors=[LivenessInterceptor()],
    ):
        seen = await temporal_env.client.execute_workflow(
            ExecuteOnce.run, execute_input(actions_profile()), id=queue, task_queue=queue
        )
        # Leaving the worker cancels the attempt still hanging in it: it never answers.

    assert seen == "failed: TimeoutError"
    entry = await store.ledger_get(KEY)
    assert entry is not None
    assert entry.status is ActionStatus.FAILED
    assert "timeout" in entry.outcome.lower()
    assert [e.type for e in await store.audit_entries(INCIDENT)] == ["response.block_ip.failed"]


async def test_a_workflow_cancelled_mid_execute_leaves_the_action_abandoned(
    temporal_env: WorkflowEnvironment, store: Store
) -> None:
    firewall = HangingFirewall()
    firewall.hanging = True
    activities = ResponseActivities(store, FirewallOnly(firewall))  # type: ignore[arg-type]
    queue = f"liveness-{uuid.uuid4().hex[:8]}"
    profile = actions_profile(start_to_close_s=60.0, heartbeat_s=3.0)
    async with Worker(
        temporal_env.client,
        task_queue=queue,
        workflows=[ExecuteOnce],
        activities=[activities.execute, activities.end],
        interceptors=[LivenessInterceptor()],
    ):
        handle = await temporal_env.client.start_workflow(
            ExecuteOnce.run, execute_input(profile), id=queue, task_queue=queue
        )
        await asyncio.wait_for(firewall.reached.wait(), 30)
        await handle.cancel()
        seen = await handle.result()

    assert seen == "failed: CancelledError"  # as IncidentWorkflow sees a cancelled activity
    entry = await store.ledger_get(KEY)
    assert entry is not None
    assert entry.status is ActionStatus.ABANDONED
    assert [e.type for e in await store.audit_entries(INCIDENT)] == ["response.block_ip.abandoned"]
