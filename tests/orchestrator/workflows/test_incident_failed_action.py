"""An action whose execution fails for good: the workflow ends its ledger entry (`response.end`,
`failed`), tells the playbook, and completes; nothing waits forever on a `pending` entry."""

from __future__ import annotations

import pytest
from temporalio import activity
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

from agents.models import OutcomeStatus
from orchestrator.models import ExecuteActionInput, ExecuteActionResult
from tests.orchestrator.workflows.harness import FakeActivities, Script, facts, running_incident
from tools.actions import BlockIp, Patch, TargetKind

pytestmark = pytest.mark.temporal


class RefusingVendor(FakeActivities):
    @activity.defn(name="response.execute")
    async def execute(self, request: ExecuteActionInput) -> ExecuteActionResult:
        self.script.executed.append(request)
        raise ApplicationError("the firewall refused the rule", non_retryable=True)


async def test_an_action_that_fails_for_good_is_ended_failed_and_the_incident_completes(
    temporal_env: WorkflowEnvironment,
) -> None:
    ip = facts(kind=TargetKind.IP, asset_kind=None, criticality=None)
    script = Script(proposals=[(BlockIp(target="203.0.113.7"), ip)])
    async with running_incident(temporal_env, script, RefusingVendor) as (handle, _):
        result = await handle.result()
    assert len(script.executed) == 1
    assert [(e.status, e.action.target) for e in script.ended] == [("failed", "203.0.113.7")]
    assert [o.status for o in script.outcomes] == [OutcomeStatus.FAILED]
    assert result.executed == []


class NoPatchingEdr(FakeActivities):
    @activity.defn(name="response.execute")
    async def execute(self, request: ExecuteActionInput) -> ExecuteActionResult:
        self.script.executed.append(request)
        # what `dispatch` raises for an EDR without a patching endpoint, as the activity sends it
        raise ApplicationError(
            "InMemoryEdr cannot patch: apply KB5004945 for CVE-2021-34527 on WS01 by hand",
            type="UnsupportedActionError",
            non_retryable=True,
        )


async def test_a_patch_no_edr_can_apply_goes_to_the_ticket_as_a_task(
    temporal_env: WorkflowEnvironment,
) -> None:
    patch = Patch(target="WS01", cve="CVE-2021-34527", remediation="KB5004945")
    script = Script(proposals=[(patch, facts())])
    async with running_incident(temporal_env, script, NoPatchingEdr) as (handle, _):
        result = await handle.result()
    assert [o.status for o in script.outcomes] == [OutcomeStatus.FAILED]
    assert result.executed == []
    assert (
        "patch WS01 FAILED: needs a human (apply KB5004945 for CVE-2021-34527 by hand)"
        in script.comments
    )
