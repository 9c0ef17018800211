"""A decision counts at the time the store recorded it, on a real Temporal dev server in real
time. Found in review: a decision `ApprovalService` recorded before the request expired, whose
confirmation against the store ended after the expiry time, was refused as expired (the expiry
timer fired while the look-up was in flight, and the gate compared the workflow's clock). Expiry
now waits for the confirmations in flight, and the gate compares the claim's time."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from temporalio import activity
from temporalio.client import WorkflowUpdateFailedError
from temporalio.testing import WorkflowEnvironment

from agents.models import OutcomeStatus
from orchestrator.models import ConfirmDecisionInput, DecisionAck, DecisionConfirmation
from tests.orchestrator.workflows.harness import (
    RECORDED_CLAIMS,
    FakeActivities,
    Script,
    decision,
    facts,
    incident_worker,
    new_incident_id,
    new_queue,
    start_incident,
    workflow_input,
)
from tests.orchestrator.workflows.test_incident_approvals import pending_approval
from tests.orchestrator.workflows.test_incident_deadlines import short_tiers
from tools.actions import IsolateHost

pytestmark = pytest.mark.temporal

CONFIRM_S = 2.0  # the store's look-up, slow enough to end after the expiry time


class SlowConfirmations(FakeActivities):
    """The store's confirmation, slow, carrying the time each claim was recorded."""

    def __init__(self, script: Script, claimed_at: dict[str, datetime]) -> None:
        super().__init__(script)
        self.claimed_at = claimed_at

    @activity.defn(name="approvals.confirm")
    async def confirm(self, request: ConfirmDecisionInput) -> DecisionConfirmation:
        await asyncio.sleep(CONFIRM_S)
        claim = RECORDED_CLAIMS.get(request.decision.decision_id)
        answer = DecisionConfirmation(
            confirmed=claim, claimed_at=self.claimed_at[request.decision.decision_id]
        )
        self.script.confirmations.append(answer)
        return answer


async def _decide_near_expiry(
    env: WorkflowEnvironment, recorded_after_expiry_s: float
) -> tuple[Script, DecisionAck | None]:
    """Reminder at 1 s, escalation at 2 s, expiry at 3 s; a decision sent at 2.2 s whose claim
    the store dated `recorded_after_expiry_s` from the expiry time (negative: before it)."""
    script = Script(proposals=[(IsolateHost(target="WS01"), facts(protected=True))])
    claimed_at: dict[str, datetime] = {}
    fakes = SlowConfirmations(script, claimed_at)
    policy = short_tiers(reminder_s=1, sla_s=2, escalation_wait_s=1)
    queue = new_queue()
    async with incident_worker(env.client, queue, fakes.all()):
        handle = await start_incident(env.client, workflow_input(new_incident_id(), queue, policy))
        request = await pending_approval(handle)
        await asyncio.sleep((request.deadline - datetime.now(UTC)).total_seconds() + 0.2)
        sent = decision(request.approval_id, request.action_hash, "alice", ["soc-primary"])
        expires_at = request.deadline + timedelta(seconds=1)
        claimed_at[sent.decision_id] = expires_at + timedelta(seconds=recorded_after_expiry_s)
        try:
            ack = await handle.execute_update("decide", sent, result_type=DecisionAck)
        except WorkflowUpdateFailedError:
            ack = None
        await asyncio.wait_for(handle.result(), timeout=60)
    return script, ack


async def test_a_decision_recorded_before_expiry_counts_when_its_confirmation_ends_after(
    temporal_env: WorkflowEnvironment,
) -> None:
    script, ack = await _decide_near_expiry(temporal_env, recorded_after_expiry_s=-0.8)
    assert ack is not None and ack.status == "approved"
    assert [f.status for f in script.finals] == ["approved"]
    assert script.outcomes[0].status is OutcomeStatus.EXECUTED
    assert [e.action.target for e in script.executed] == ["WS01"]


async def test_a_decision_the_store_recorded_after_expiry_is_refused(
    temporal_env: WorkflowEnvironment,
) -> None:
    script, ack = await _decide_near_expiry(temporal_env, recorded_after_expiry_s=0.5)
    assert ack is None
    assert [f.status for f in script.finals] == ["expired"]
    assert script.outcomes[0].status is OutcomeStatus.EXPIRED
    assert script.executed == []
