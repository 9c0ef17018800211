"""IncidentWorkflow's timing of each executed action, in virtual time on a real Temporal dev server:
the incident's cumulative approval wait and execution time, recorded on every executed action."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from temporalio import activity
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from orchestrator.models import (
    ExecuteActionInput,
    ExecuteActionResult,
    IncidentResult,
    IncidentStatusView,
)
from orchestrator.workflows.incident import IncidentWorkflow
from tests.orchestrator.workflows.harness import (
    FakeActivities,
    Script,
    decision,
    facts,
    running_incident,
)
from tests.orchestrator.workflows.test_incident_approvals import pending_approval
from tools.actions import IsolateHost, KillProcess, TargetKind

pytestmark = pytest.mark.temporal

Handle = WorkflowHandle[IncidentWorkflow, IncidentResult]
EXECUTION_S = 0.3  # each fake execution's wall time: virtual time runs at wall pace meanwhile
ANALYST_S = 7 * 60  # the virtual time the analyst takes to answer, under the reminder


class SlowActivities(FakeActivities):
    @activity.defn(name="response.execute")
    async def execute(self, request: ExecuteActionInput) -> ExecuteActionResult:
        await asyncio.sleep(EXECUTION_S)
        return await super().execute(request)


async def test_executed_actions_carry_the_cumulative_approval_wait_and_execution_time(
    temporal_env: WorkflowEnvironment,
) -> None:
    script = Script(
        proposals=[
            (KillProcess(target="WS02:4242"), facts(kind=TargetKind.PROCESS)),  # allowed
            (IsolateHost(target="WS01"), facts(protected=True)),  # needs an approval
        ]
    )
    async with running_incident(temporal_env, script, SlowActivities) as (handle, _):
        request = await pending_approval(handle)
        # The kill runs beside the pending request (a round's proposals are handled together):
        # the analyst answers after it, so skipping the clock skips no execution.
        while not (await handle.query(IncidentWorkflow.status)).executed:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        await temporal_env.fast_forward(handle, timedelta(seconds=ANALYST_S))  # type: ignore[attr-defined]
        await handle.execute_update(
            IncidentWorkflow.decide,
            decision(request.approval_id, request.action_hash, "alice", [request.approver_group]),
        )
        result = await handle.result()
        status: IncidentStatusView = await handle.query(IncidentWorkflow.status)

    killed, isolated = result.executed
    assert (killed.approval_required, isolated.approved_by) == (False, ["alice"])
    # Nothing awaited an approval before the first action; the second waited for the analyst.
    assert killed.approval_wait_s == 0.0
    waited = isolated.approval_wait_s - killed.approval_wait_s
    answered = (script.finals[0].at - request.requested_at).total_seconds()
    assert ANALYST_S <= answered <= waited < ANALYST_S + 30
    # Execution: each action's own time added to the incident's running total.
    assert EXECUTION_S <= killed.execution_s < EXECUTION_S + 5
    assert 2 * EXECUTION_S <= isolated.execution_s < 2 * EXECUTION_S + 10
    assert isolated.execution_s > killed.execution_s
    # The parts fit inside the time from the incident's start to the action, but for the kill's
    # execution, which overlapped the isolation's wait (each is the time it was under way).
    for action in (killed, isolated):
        elapsed = (action.at - result.started_at).total_seconds()
        assert action.approval_wait_s + action.execution_s <= elapsed + EXECUTION_S
    assert status.executed == result.executed


async def test_an_incident_without_approvals_records_no_wait(
    temporal_env: WorkflowEnvironment,
) -> None:
    script = Script(proposals=[(KillProcess(target="WS02:4242"), facts(kind=TargetKind.PROCESS))])
    async with running_incident(temporal_env, script) as (handle, _):
        result = await handle.result()
    assert script.requests == []
    (killed,) = result.executed
    assert killed.approval_wait_s == 0.0
    assert killed.execution_s <= (killed.at - result.started_at).total_seconds()
