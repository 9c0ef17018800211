"""When no worker answers a decision's Update in time, the approval service falls back to the
deduplicated `decide_signal` (the SDK raises its own timeout error for that, not an RPCError):
the decider is told it is queued, and the signal is in the workflow's history for the workflow to
apply when a worker runs."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.testing import WorkflowEnvironment

from orchestrator.approvals.directory import ApproverDirectory
from orchestrator.approvals.service import ApprovalService
from orchestrator.backends import workflow_id
from orchestrator.models import DecisionKind, IncidentWorkflowInput
from orchestrator.policy.model import load_policy
from orchestrator.store.records import ApprovalRecord
from orchestrator.store.repository import Store
from orchestrator.workflows.incident import IncidentWorkflow
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
