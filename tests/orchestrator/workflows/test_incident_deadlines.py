"""Absolute approval deadlines on a real Temporal dev server, in real time: the worker is stopped
once a request's first timer is running and started again later, as after a crash or an outage.
The reminder, the escalation and the expiry keep the times fixed when the request was opened:
overdue ones resolve at once, in order, and nobody is paged for a request that can no longer be
decided. (Virtual time cannot stand for the downtime: it stops at the first timer that fires with
no worker to run the workflow.)"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
from temporalio import activity
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from agents.models import OutcomeStatus
from orchestrator.models import ApprovalNotice, ApprovalNoticeInput, IncidentResult
from orchestrator.policy.model import PolicyDocument, load_policy
from orchestrator.workflows.incident import IncidentWorkflow
from tests.orchestrator.workflows.harness import (
    FakeActivities,
    Script,
    facts,
    incident_worker,
    new_incident_id,
    new_queue,
    start_incident,
    workflow_input,
)
from tests.orchestrator.workflows.test_incident_approvals import pending_approval
from tools.actions import IsolateHost

pytestmark = pytest.mark.temporal

Handle = WorkflowHandle[IncidentWorkflow, IncidentResult]
ON_TIME = timedelta(seconds=1.5)  # how late "at its time" may be: a workflow task on a busy box
# The tests' times are in units of SCALE seconds: the worker must see the request's first timer
# start, with nothing else running, before the reminder fires, and one CI run under load did not
# within 2 s (it waited out the whole request, then timed out).
SCALE = 2.0
# A worker without a cache can drop a workflow task that arrives while the run is being evicted
# (core logs "leftover buffered tasks when evicting run"); the server dispatches it again only
# after the workflow task timeout, 10 s by default, which once outlasted the reminder's 4 s in CI.
LOST_TASK_TIMEOUT = timedelta(seconds=2)


def units(value: float) -> float:
    return value * SCALE


@dataclass
class Timeline:
    """When each notice reached the humans' activity (wall time: the dev server's clock)."""

    notices: list[tuple[ApprovalNotice, datetime]] = field(default_factory=list)


class TimedActivities(FakeActivities):
    def __init__(self, script: Script, timeline: Timeline) -> None:
        super().__init__(script)
        self.timeline = timeline

    @activity.defn(name="approvals.notify")
    async def notify(self, notice: ApprovalNoticeInput) -> None:
        self.timeline.notices.append((notice.notice, datetime.now(UTC)))
        await super().notify(notice)


def short_tiers(reminder_s: float, sla_s: float, escalation_wait_s: float) -> PolicyDocument:
    policy = load_policy(None)
    times = {"reminder_after_s": reminder_s, "sla_s": sla_s, "escalation_wait_s": escalation_wait_s}
    tiers = {name: tier.model_copy(update=times) for name, tier in policy.tiers.items()}
    return policy.model_copy(update={"tiers": tiers})


async def _waiting_on_timers_only(handle: Handle) -> None:
    """Until the request's first timer runs and nothing else does (every activity answered, the
    last workflow task completed): a worker stopped then loses no task in flight, whose retry
    would wait for the workflow task timeout."""
    done = (EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED, EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED)
    async with asyncio.timeout(30):
        while True:
            events = [e.event_type for e in (await handle.fetch_history()).events]
            scheduled = events.count(EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED)
            if (
                EventType.EVENT_TYPE_TIMER_STARTED in events
                and scheduled == sum(events.count(kind) for kind in done)
                and events[-1] == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED
            ):
                return
            await asyncio.sleep(0.05)


async def run_with_downtime(
    env: WorkflowEnvironment, policy: PolicyDocument, down_until_s: float
) -> tuple[IncidentResult, Script, Timeline, datetime, datetime]:
    """Start an incident whose only proposal needs an approval; stop its worker as soon as the
    request's first timer runs; start a worker again `down_until_s` after the request opened.
    Returns the result, what the fakes saw, when the request opened and when the worker came back.
    """
    script = Script(proposals=[(IsolateHost(target="WS01"), facts(protected=True))])
    timeline = Timeline()
    fakes = TimedActivities(script, timeline)
    queue = new_queue()
    inputs = workflow_input(new_incident_id(), queue, policy)
    async with incident_worker(env.client, queue, fakes.all()):
        handle = await start_incident(env.client, inputs, task_timeout=LOST_TASK_TIMEOUT)
        request = await pending_approval(handle)
        await _waiting_on_timers_only(handle)
    stopped = datetime.now(UTC)
    reminder_at = request.requested_at + timedelta(
        seconds=policy.tiers["standard"].reminder_after_s
    )
    assert stopped < reminder_at, "the worker must be down before the first timer fires"
    back_at = request.requested_at + timedelta(seconds=down_until_s)
    await asyncio.sleep((back_at - datetime.now(UTC)).total_seconds())
    restarted = datetime.now(UTC)
    async with incident_worker(env.client, queue, fakes.all()):
        result = await asyncio.wait_for(handle.result(), timeout=60)
    return result, script, timeline, request.requested_at, restarted


async def test_a_request_whose_whole_window_passed_during_downtime_expires_at_once_unpaged(
    temporal_env: WorkflowEnvironment,
) -> None:
    # In units: reminder at 2, escalation at 3, expiry at 4; the worker is back at 5.5.
    policy = short_tiers(reminder_s=units(2), sla_s=units(3), escalation_wait_s=units(1))
    result, script, timeline, opened, back = await run_with_downtime(
        temporal_env, policy, units(5.5)
    )

    assert timeline.notices == []  # no reminder, no escalation group paged for a dead request
    assert [n.notice for n in script.announced if n.notice] == []
    assert [f.status for f in script.finals] == ["expired"]
    assert script.outcomes[0].status is OutcomeStatus.EXPIRED
    assert script.executed == []
    assert back <= script.finals[0].at < back + timedelta(seconds=10)  # at once when back
    assert result.denied[0].reason == "expired"
    assert script.finals[0].at - opened >= timedelta(seconds=units(4))


async def test_an_overdue_reminder_fires_once_then_the_rest_keep_their_absolute_times(
    temporal_env: WorkflowEnvironment,
) -> None:
    # In units: reminder at 2 (overdue when the worker is back at 4), escalation at 6, expiry at
    # 9. Chained timers would escalate at 8 and expire at 11.
    policy = short_tiers(reminder_s=units(2), sla_s=units(6), escalation_wait_s=units(3))
    _, script, timeline, opened, back = await run_with_downtime(temporal_env, policy, units(4))

    kinds = [kind for kind, _ in timeline.notices]
    assert kinds == [ApprovalNotice.REMINDER, ApprovalNotice.ESCALATION]
    (_, reminded), (_, escalated) = timeline.notices
    deadline = opened + timedelta(seconds=units(6))
    expires = opened + timedelta(seconds=units(9))
    assert back <= reminded < deadline  # once, as soon as the worker was back
    assert deadline <= escalated < deadline + ON_TIME
    assert [f.status for f in script.finals] == ["expired"]
    assert expires <= script.finals[0].at < expires + ON_TIME


async def test_a_reminder_overdue_past_the_deadline_is_left_to_the_escalation(
    temporal_env: WorkflowEnvironment,
) -> None:
    # In units: reminder at 2 and escalation at 3 are both overdue when the worker is back at
    # 4.5; expiry at 8. Only the escalation is sent: the primary group can no longer decide alone.
    policy = short_tiers(reminder_s=units(2), sla_s=units(3), escalation_wait_s=units(5))
    _, script, timeline, opened, back = await run_with_downtime(temporal_env, policy, units(4.5))

    assert [kind for kind, _ in timeline.notices] == [ApprovalNotice.ESCALATION]
    assert back <= timeline.notices[0][1] < back + timedelta(seconds=10)
    expires = opened + timedelta(seconds=units(8))
    assert [f.status for f in script.finals] == ["expired"]
    assert expires <= script.finals[0].at < expires + ON_TIME
