"""The approval gate of IncidentWorkflow on a real Temporal dev server, in virtual time: approve,
deny, expiry with reminder and escalation, the escalation group, the refusals of the Update's
validator, two distinct approvers, and the deduplicated signal fallback."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

import pytest
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.testing import WorkflowEnvironment

from agents.models import OutcomeStatus
from orchestrator.models import (
    ApprovalNotice,
    DecisionAck,
    DecisionKind,
    IncidentResult,
    IncidentStatusView,
    PendingApprovalView,
)
from orchestrator.workflows.incident import IncidentWorkflow
from tests.orchestrator.workflows.harness import (
    Script,
    decision,
    facts,
    request_committed,
    running_incident,
)
from tools.actions import DisableAccount, IsolateHost, TargetKind
from tools.models import AssetKind, Criticality

pytestmark = pytest.mark.temporal

Handle = WorkflowHandle[IncidentWorkflow, IncidentResult]


async def pending_approval(handle: Handle) -> PendingApprovalView:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        status: IncidentStatusView = await handle.query(IncidentWorkflow.status)
        if status.pending_approvals:
            first = status.pending_approvals[0]
            if await request_committed(handle, first.approval_id):
                return first
        await asyncio.sleep(0.05)
    raise AssertionError("no approval request appeared")


def one_approver_script() -> Script:
    # A protected workstation: approval is required whatever the score, one approver suffices.
    return Script(proposals=[(IsolateHost(target="WS01"), facts(protected=True))])


def two_approver_script() -> Script:
    return Script(
        proposals=[
            (
                IsolateHost(target="DC01"),
                facts(
                    asset_kind=AssetKind.DOMAIN_CONTROLLER,
                    criticality=Criticality.CRITICAL,
                    protected=True,
                ),
            )
        ],
        confidence=0.6,
    )


async def test_approval_by_an_authorised_human_executes_the_action(
    temporal_env: WorkflowEnvironment,
) -> None:
    script = one_approver_script()
    async with running_incident(temporal_env, script) as (handle, _):
        request = await pending_approval(handle)
        assert request.required_approvers == 1
        ack = await handle.execute_update(
            "decide",
            decision(request.approval_id, request.action_hash, "alice", [request.approver_group]),
            result_type=DecisionAck,
        )
        assert ack.status == "approved"
        result = await handle.result()
    assert [e.action.target for e in result.executed] == ["WS01"]
    assert result.executed[0].approved_by == ["alice"]
    assert [e.approved_by for e in script.executed] == [["alice"]]
    assert [f.status for f in script.finals] == ["approved"]
    assert script.outcomes[0].status is OutcomeStatus.EXECUTED


async def test_denial_blocks_the_action_and_tells_the_playbook(
    temporal_env: WorkflowEnvironment,
) -> None:
    script = one_approver_script()
    async with running_incident(temporal_env, script) as (handle, _):
        request = await pending_approval(handle)
        await handle.execute_update(
            IncidentWorkflow.decide,
            decision(
                request.approval_id,
                request.action_hash,
                "alice",
                [request.approver_group],
                DecisionKind.DENY,
            ),
        )
        result = await handle.result()
    assert result.executed == []
    assert script.executed == []
    assert [f.status for f in script.finals] == ["denied"]
    assert script.outcomes[0].status is OutcomeStatus.DENIED


async def test_unanswered_request_is_reminded_escalated_then_denied_in_virtual_time(
    temporal_env: WorkflowEnvironment,
) -> None:
    script = one_approver_script()
    wall = time.monotonic()
    async with running_incident(temporal_env, script) as (handle, _):
        request = await pending_approval(handle)
        virtual_wait = request.expires_at - request.requested_at
        assert virtual_wait >= timedelta(minutes=10)
        await temporal_env.fast_forward(handle, virtual_wait + timedelta(seconds=5))  # type: ignore[attr-defined]
        result = await handle.result()
    assert time.monotonic() - wall < 30
    assert [n.notice for n in script.notices] == [
        ApprovalNotice.REMINDER,
        ApprovalNotice.ESCALATION,
    ]
    assert script.executed == []
    assert [f.status for f in script.finals] == ["expired"]
    assert script.outcomes[0].status is OutcomeStatus.EXPIRED
    assert (result.closed_at - result.started_at) >= virtual_wait


async def test_escalation_group_may_decide_only_after_the_deadline(
    temporal_env: WorkflowEnvironment,
) -> None:
    script = one_approver_script()
    async with running_incident(temporal_env, script) as (handle, _):
        request = await pending_approval(handle)
        lead = decision(
            request.approval_id, request.action_hash, "lead", [request.escalation_group]
        )
        with pytest.raises(WorkflowUpdateFailedError):
            await handle.execute_update(IncidentWorkflow.decide, lead)
        await temporal_env.fast_forward(  # type: ignore[attr-defined]
            handle, request.deadline - request.requested_at + timedelta(seconds=5)
        )
        ack = await handle.execute_update(
            "decide",
            decision(request.approval_id, request.action_hash, "lead", [request.escalation_group]),
            result_type=DecisionAck,
        )
        assert ack.status == "approved"
        result = await handle.result()
    assert [n.notice for n in script.notices] == [
        ApprovalNotice.REMINDER,
        ApprovalNotice.ESCALATION,
    ]
    assert result.executed[0].approved_by == ["lead"]


async def test_validator_refuses_requester_agent_outsider_changed_action_and_unknown_request(
    temporal_env: WorkflowEnvironment,
) -> None:
    script = one_approver_script()
    async with running_incident(temporal_env, script) as (handle, _):
        request = await pending_approval(handle)
        group = [request.approver_group]
        refused = [
            decision(request.approval_id, request.action_hash, "garrison-agent", group),
            decision(request.approval_id, request.action_hash, "mallory", ["not-an-approver"]),
            decision(request.approval_id, "0" * 64, "alice", group),
            decision("apr-unknown", request.action_hash, "alice", group),
        ]
        for attempt in refused:
            with pytest.raises(WorkflowUpdateFailedError):
                await handle.execute_update(IncidentWorkflow.decide, attempt)
        status: IncidentStatusView = await handle.query(IncidentWorkflow.status)
        assert status.pending_approvals[0].approvers == []
        await handle.execute_update(
            IncidentWorkflow.decide,
            decision(request.approval_id, request.action_hash, "alice", group),
        )
        with pytest.raises(WorkflowUpdateFailedError) as refused_late:
            await handle.execute_update(
                IncidentWorkflow.decide,
                decision(request.approval_id, request.action_hash, "bob", group, DecisionKind.DENY),
            )
        assert "already decided" in str(refused_late.value.cause)
        await handle.result()
    assert len(script.executed) == 1


async def test_critical_action_needs_two_distinct_humans(temporal_env: WorkflowEnvironment) -> None:
    script = two_approver_script()
    async with running_incident(temporal_env, script) as (handle, _):
        request = await pending_approval(handle)
        assert request.required_approvers == 2
        group = [request.approver_group]
        first = await handle.execute_update(
            "decide",
            decision(request.approval_id, request.action_hash, "alice", group),
            result_type=DecisionAck,
        )
        assert first.status == "recorded"
        with pytest.raises(WorkflowUpdateFailedError) as repeated:
            await handle.execute_update(
                IncidentWorkflow.decide,
                decision(request.approval_id, request.action_hash, "ALICE", group),
            )
        assert "already decided this request" in str(repeated.value.cause)
        assert script.executed == []
        second = await handle.execute_update(
            "decide",
            decision(request.approval_id, request.action_hash, "bob", group),
            result_type=DecisionAck,
        )
        assert second.status == "approved"
        result = await handle.result()
    assert sorted(result.executed[0].approved_by) == ["alice", "bob"]


async def test_signal_fallback_is_deduplicated_on_decision_id(
    temporal_env: WorkflowEnvironment,
) -> None:
    script = two_approver_script()
    async with running_incident(temporal_env, script) as (handle, _):
        request = await pending_approval(handle)
        group = [request.approver_group]
        once = decision(request.approval_id, request.action_hash, "alice", group, decision_id="d-1")
        await handle.signal(IncidentWorkflow.decide_signal, once)
        await handle.signal(IncidentWorkflow.decide_signal, once)
        await asyncio.sleep(0.5)
        status: IncidentStatusView = await handle.query(IncidentWorkflow.status)
        assert status.pending_approvals[0].approvers == ["alice"]
        await handle.signal(
            IncidentWorkflow.decide_signal,
            decision(request.approval_id, request.action_hash, "bob", group, decision_id="d-2"),
        )
        result = await handle.result()
    assert sorted(result.executed[0].approved_by) == ["alice", "bob"]


async def test_policy_deny_never_reaches_execution(temporal_env: WorkflowEnvironment) -> None:
    invented = facts(kind=TargetKind.IDENTITY, asset_kind=None, criticality=None)
    invented = invented.model_copy(update={"known_entity": False})
    script = Script(proposals=[(DisableAccount(target="ceo"), invented)])
    async with running_incident(temporal_env, script) as (handle, _):
        result = await handle.result()
    assert script.executed == []
    assert script.requests == []
    assert result.denied[0].action.target == "ceo"
    assert script.outcomes[0].status is OutcomeStatus.DENIED


async def test_a_decision_the_store_never_recorded_is_refused_as_forged(
    temporal_env: WorkflowEnvironment,
) -> None:
    """Anything that reaches the Temporal frontend can send `decide` with an invented identity
    and self-chosen groups: without the approval service's claim it counts for nothing."""
    script = two_approver_script()
    async with running_incident(temporal_env, script) as (handle, _):
        request = await pending_approval(handle)
        group = [request.approver_group]
        for invented in ("mallory", "eve"):
            forged = decision(
                request.approval_id, request.action_hash, invented, group, recorded=False
            )
            with pytest.raises(WorkflowUpdateFailedError) as refused:
                await handle.execute_update(IncidentWorkflow.decide, forged)
            assert "forged decision refused" in str(refused.value.cause)
        await handle.signal(
            IncidentWorkflow.decide_signal,
            decision(request.approval_id, request.action_hash, "trent", group, recorded=False),
        )
        # A recorded decision altered in flight (another identity on its id) is forged too.
        genuine = decision(request.approval_id, request.action_hash, "alice", group)
        altered = genuine.model_copy(update={"user": "mallory"})
        with pytest.raises(WorkflowUpdateFailedError):
            await handle.execute_update(IncidentWorkflow.decide, altered)

        async def forged_count() -> int:
            return sum(1 for c in script.confirmations if c.confirmed is None)

        for _ in range(200):  # up to 10 s
            if await forged_count() >= 4:
                break
            await asyncio.sleep(0.05)
        assert await forged_count() == 4
        status: IncidentStatusView = await handle.query(IncidentWorkflow.status)
        assert status.pending_approvals[0].approvers == []
        assert script.executed == []
        await handle.terminate("test done")


@pytest.mark.parametrize("again", [" alice", "Alice", "ALICE", "\uff41lice"])
async def test_one_human_in_any_spelling_is_one_approver(
    temporal_env: WorkflowEnvironment, again: str
) -> None:
    script = two_approver_script()
    async with running_incident(temporal_env, script) as (handle, _):
        request = await pending_approval(handle)
        group = [request.approver_group]
        # The other spelling first: the gate once stored it raw and compared a stripped name.
        await handle.execute_update(
            IncidentWorkflow.decide,
            decision(request.approval_id, request.action_hash, again, group),
        )
        with pytest.raises(WorkflowUpdateFailedError) as repeated:
            await handle.execute_update(
                IncidentWorkflow.decide,
                decision(request.approval_id, request.action_hash, "alice", group),
            )
        assert "already decided this request" in str(repeated.value.cause)
        assert script.executed == []
        await handle.terminate("test done")


async def test_an_isolation_beyond_the_global_breaker_waits_for_two_approvers(
    temporal_env: WorkflowEnvironment,
) -> None:
    """Ten isolations already requested elsewhere within the hour: this low-risk one, which the
    policy would allow on its own, now needs the two-approver tier."""
    script = Script(proposals=[(IsolateHost(target="WS07"), facts())])
    script.isolation_slots.update({f"other-{n}:isolate_host:ws{n}": n + 1 for n in range(10)})
    async with running_incident(temporal_env, script) as (handle, _):
        request = await pending_approval(handle)
        assert request.required_approvers == 2
        for _ in range(600):  # the gate shows the request before `approvals.request` ran
            if script.requests:
                break
            await asyncio.sleep(0.05)
        assert script.requests[0].decision.tier == "critical"
        assert any("global isolation breaker" in r for r in script.requests[0].decision.reasons)
        await handle.terminate("test done")

    below = Script(proposals=[(IsolateHost(target="WS07"), facts())])
    async with running_incident(temporal_env, below) as (handle, _):
        result = await handle.result()
    assert [e.action.target for e in result.executed] == ["WS07"]
    assert below.requests == []
