"""When no worker answers a decision's Update in time, the approval service falls back to the
deduplicated `decide_signal` (the SDK raises its own timeout error for that, not an RPCError):
the decider is told it is queued, and the signal is in the workflow's history for the workflow to
apply when a worker runs."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from temporalio import activity
from temporalio.api.enums.v1 import EventType
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from orchestrator.activities.guards import GuardActivities
from orchestrator.approvals.directory import ApproverDirectory
from orchestrator.approvals.service import ApprovalService
from orchestrator.backends import workflow_id
from orchestrator.models import (
    ApprovalRequestInput,
    ConfirmDecisionInput,
    DecisionConfirmation,
    DecisionKind,
    IncidentWorkflowInput,
    RefusalCode,
)
from orchestrator.policy.model import load_policy
from orchestrator.store.records import ApprovalRecord
from orchestrator.store.repository import Store
from orchestrator.workflows.incident import IncidentWorkflow
from tests.orchestrator.workflows.harness import FakeActivities, Script, facts, workflow_input
from tests.orchestrator.workflows.test_incident_approvals import pending_approval
from tools.actions import IsolateHost

pytestmark = pytest.mark.temporal


async def test_an_update_nobody_answers_falls_back_to_the_signal(
    temporal_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    store = await Store.open(f"sqlite:///{tmp_path / 'g.db'}")
    incident_id = f"fallback-{uuid.uuid4().hex[:8]}"
    queue = f"unpolled-{uuid.uuid4().hex[:8]}"  # no worker: the Update cannot be answered
    now = datetime.now(UTC)
    try:
        await store.create_approval(
            ApprovalRecord(
                id="apr-1",
                incident_id=incident_id,
                action=IsolateHost(target="WS01"),
                action_hash="h1",
                risk=60,
                required_approvers=1,
                approver_group="soc",
                requester="garrison-agent",
                policy_version="test",
                created_at=now,
                deadline=now + timedelta(minutes=30),
            )
        )
        handle = await temporal_env.client.start_workflow(
            IncidentWorkflow.run,
            IncidentWorkflowInput(
                incident_id=incident_id,
                group_key=incident_id,
                title="t",
                policy=load_policy(None),
                requester="garrison-agent",
                task_queue_agents=queue,
                task_queue_actions=queue,
            ),
            id=workflow_id(incident_id),
            task_queue=queue,
        )
        directory = ApproverDirectory.model_validate({"groups": {"soc": {"members": ["alice"]}}})
        service = ApprovalService(
            temporal_env.client,
            store,
            directory,
            "garrison-agent",
            update_timeout=timedelta(seconds=1),
        )
        reply = await service.decide("apr-1", "alice", DecisionKind.APPROVE, channel="cli")
        assert reply.accepted and reply.message.startswith("queued")
        signals = [
            event.workflow_execution_signaled_event_attributes.signal_name
            async for event in handle.fetch_history_events()
            if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED
        ]
        assert signals == ["decide_signal"]
        audit = await store.audit_entries(incident_id=incident_id)
        assert [(a.type, a.outcome) for a in audit] == [("approval.decision_received", "queued")]
        await handle.terminate("test done")
    finally:
        await store.close()


async def test_a_decision_queued_while_no_worker_runs_takes_effect_once_when_one_returns(
    temporal_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    """`garrison approve` during a worker outage: the Update times out, the decision is queued as
    the signal and audited; when a worker returns the workflow confirms it against the store and
    applies it, once: the action runs once, the queued signal is not applied twice."""
    store = await Store.open(f"sqlite:///{tmp_path / 'g.db'}")
    script = Script(proposals=[(IsolateHost(target="WS01"), facts(protected=True))])
    fakes = StoreConfirming(script, store)
    queue = f"q-{uuid.uuid4().hex[:8]}"
    incident_id = f"outage-{uuid.uuid4().hex[:8]}"
    directory = ApproverDirectory.model_validate({"groups": {"soc-primary": ["alice"]}})
    service = ApprovalService(
        temporal_env.client, store, directory, "garrison-agent", timedelta(seconds=1)
    )
    try:

        def worker() -> Worker:
            return Worker(
                temporal_env.client,
                task_queue=queue,
                workflows=[IncidentWorkflow],
                activities=fakes.all(),
            )

        async with worker():
            handle = await temporal_env.client.start_workflow(
                IncidentWorkflow.run,
                workflow_input(incident_id, queue),
                id=workflow_id(incident_id),
                task_queue=queue,
                start_signal="alerts_added",
                start_signal_args=[{"alert_uids": ["a1"]}],
            )
            request = await pending_approval(handle)
        # The worker is gone. The service finds the request in the store, as ever.
        await store.create_approval(approval_record(incident_id, script.requests[0]))
        reply = await service.decide(
            request.approval_id, "alice", DecisionKind.APPROVE, channel="cli"
        )
        assert reply.accepted and reply.message.startswith("queued"), reply.message
        audit = [(a.type, a.outcome) for a in await store.audit_entries(incident_id)]
        assert audit == [("approval.decision_received", "queued")]
        assert script.executed == []

        async with worker():
            result = await handle.result()
        assert [e.action.target for e in result.executed] == ["WS01"]
        assert len(script.executed) == 1
        assert result.executed[0].approved_by == ["alice"]
        assert [c.confirmed is not None for c in script.confirmations] == [True]
    finally:
        await store.close()


class StoreConfirming(FakeActivities):
    """The harness's fakes, but decisions are confirmed against the real store's claims."""

    def __init__(self, script: Script, store: Store) -> None:
        super().__init__(script)
        self.guards = GuardActivities(store)

    @activity.defn(name="approvals.confirm")
    async def confirm(self, request: ConfirmDecisionInput) -> DecisionConfirmation:
        answer = await self.guards.confirm(request)
        self.script.confirmations.append(answer)
        return answer


def approval_record(incident_id: str, request: ApprovalRequestInput) -> ApprovalRecord:
    return ApprovalRecord(
        id=request.approval_id,
        incident_id=incident_id,
        action=request.action,
        action_hash=request.action_hash,
        risk=request.decision.risk,
        required_approvers=max(1, request.decision.required_approvers),
        approver_group=request.approver_group,
        requester=request.requester,
        policy_version=request.decision.policy_version,
        created_at=request.requested_at,
        deadline=request.deadline,
    )


async def test_with_temporal_unreachable_a_decision_is_audited_and_nothing_is_decided(
    tmp_path: Path,
) -> None:
    store = await Store.open(f"sqlite:///{tmp_path / 'g.db'}")
    now = datetime.now(UTC)
    try:
        await store.create_approval(
            ApprovalRecord(
                id="apr-00000000000000aa",
                incident_id="live-down",
                action=IsolateHost(target="WS01"),
                action_hash="h1",
                risk=60,
                required_approvers=1,
                approver_group="soc",
                requester="garrison-agent",
                policy_version="test",
                created_at=now,
                deadline=now + timedelta(minutes=30),
            )
        )
        directory = ApproverDirectory.model_validate({"groups": {"soc": ["alice"]}})
        service = ApprovalService(
            None, store, directory, "garrison-agent", unreachable="Temporal is down (test)"
        )
        reply = await service.decide(
            "apr-00000000000000aa", "alice", DecisionKind.APPROVE, channel="cli"
        )
        assert not reply.accepted and reply.code is RefusalCode.UNAVAILABLE
        assert reply.message == "Temporal is down (test)"
        audit = [(a.type, a.outcome) for a in await store.audit_entries("live-down")]
        assert audit == [("approval.decision_refused", "Temporal is down (test)")]
        stored = await store.get_approval("apr-00000000000000aa")
        assert stored is not None and stored.decisions == []
    finally:
        await store.close()
