"""Issue 11's Done-when for degraded evidence, on the real IncidentWorkflow: the recorded credential
theft runs end to end on the Temporal dev server with the real activities and agents, its EDR read
through the real CrowdStrike adapter against the emulator (faults from the start), containment on
the twins, and an analyst who approves everything asked of them (two, for a two-approver request):
the worst case for an action taken on evidence nobody should trust.

- `edr=5xx:6` (six 503s, all during triage): the executed actions, and which ran without a human,
  are exactly the unfaulted run's;
- the EDR down for the whole incident: no executed action the unfaulted run does not have, and
  none without an approval.
"""

from __future__ import annotations

import asyncio
import uuid
from contextlib import AsyncExitStack
from datetime import UTC, datetime
from pathlib import Path

import pytest
from temporalio.client import Client, WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from agents.reads import ReadRetry
from orchestrator.activities.agents import AgentActivities
from orchestrator.activities.approvals import ApprovalActivities
from orchestrator.activities.guards import GuardActivities
from orchestrator.activities.records import RecordActivities
from orchestrator.activities.response import ResponseActivities
from orchestrator.approvals.notifier import LogNotifier
from orchestrator.backends import workflow_id
from orchestrator.composition import open_checkpointer, open_store
from orchestrator.ingest.pipeline import fingerprint
from orchestrator.models import AlertsAdded, IncidentResult, IncidentStatusView
from orchestrator.policy.model import load_policy
from orchestrator.settings import GarrisonSettings
from orchestrator.store.records import DecisionClaim, IncidentRecord, IncidentStatus
from orchestrator.store.repository import Store
from orchestrator.workflows.incident import IncidentWorkflow
from tests.agents.emulated_edr import HOST_OWNER, emulated_edr, recorded
from tests.orchestrator.workflows.harness import decision, workflow_input
from tests.orchestrator.workflows.pipeline import _activities

pytestmark = pytest.mark.temporal

FAST = ReadRetry(first_wait_s=0.001, max_wait_s=0.004)  # the packaged 8 attempts, short waits
ANALYSTS = ("analyst-1", "analyst-2")
Handle = WorkflowHandle[IncidentWorkflow, IncidentResult]
Executed = set[tuple[str, str, bool]]  # kind, target, whether a human approved it


async def approve_everything(store: Store, handle: Handle, incident_id: str) -> IncidentResult:
    """Every approval the incident asks for, granted by as many analysts as it needs."""
    sent: set[tuple[str, str]] = set()
    done = asyncio.ensure_future(handle.result())
    while not done.done():
        status: IncidentStatusView = await handle.query(IncidentWorkflow.status)
        for request in status.pending_approvals:
            for user in ANALYSTS[: request.required_approvers]:
                if (request.approval_id, user) in sent:
                    continue
                sent.add((request.approval_id, user))
                given = decision(
                    request.approval_id, request.action_hash, user, [request.approver_group]
                )
                await store.decisions.record_claim(  # as ApprovalService records it
                    DecisionClaim(
                        **given.model_dump(exclude={"decision"}),
                        incident_id=incident_id,
                        decision=given.decision.value,
                        at=datetime.now(UTC),
                    )
                )
                await handle.execute_update(IncidentWorkflow.decide, given)
        await asyncio.wait([done], timeout=0.1)
    return done.result()


async def run_incident(client: Client, data_dir: Path, **faults: object) -> tuple[Executed, int]:
    """What the incident executed, and how many requests the EDR emulator answered 503."""
    loaded = recorded()
    settings = GarrisonSettings(data_dir=data_dir)
    queue = f"q-{uuid.uuid4().hex[:8]}"
    incident_id = f"degraded-{uuid.uuid4().hex[:8]}--{loaded.spec.id}"
    async with AsyncExitStack() as stack:
        world = await stack.enter_async_context(emulated_edr(loaded))
        store = await open_store(settings)
        stack.push_async_callback(store.close)
        checkpointer = await stack.enter_async_context(open_checkpointer(settings))
        activities = _activities(
            RecordActivities(store, world),
            ApprovalActivities(store, LogNotifier()),
            GuardActivities(store),
            ResponseActivities(store, world),
            AgentActivities(store, world, checkpointer, reads=FAST),
        )
        await stack.enter_async_context(
            Worker(client, task_queue=queue, workflows=[IncidentWorkflow], activities=activities)
        )
        await store.ensure_incident(
            IncidentRecord(
                id=incident_id,
                group_key=f"test:{incident_id}",
                title=loaded.spec.title,
                status=IncidentStatus.OPEN,
                opened_at=loaded.spec.alerts[0].time,
            )
        )
        alerts = loaded.spec.alerts
        for alert in alerts:
            await store.add_alert(alert, incident_id, fingerprint(incident_id, "test", alert.uid))
        world.fault(**faults)
        handle: Handle = await client.start_workflow(
            IncidentWorkflow.run,
            workflow_input(incident_id, queue, load_policy(None)),
            id=workflow_id(incident_id),
            task_queue=queue,
            start_signal="alerts_added",
            start_signal_args=[AlertsAdded(alert_uids=[a.uid for a in alerts])],
        )
        result = await asyncio.wait_for(approve_everything(store, handle, incident_id), 120)
        executed = {
            (e.action.kind.value, e.action.target, e.approval_required) for e in result.executed
        }
        return executed, world.failed_reads


def _folder(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


async def test_degraded_evidence_executes_nothing_new_and_nothing_without_a_human(
    temporal_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    client = temporal_env.client
    clean, _ = await run_incident(client, _folder(tmp_path / "clean"))
    # the unfaulted response: the thief's account disabled on approval, the C2 address blocked
    assert ("disable_account", "pandalab\\pedro.gustavo", True) in clean
    assert ("block_ip", "10.0.5.13", False) in clean

    within, failed = await run_incident(client, _folder(tmp_path / "5xx6"), fail_5xx=6)
    assert failed == 6
    assert within == clean

    down, failed = await run_incident(client, _folder(tmp_path / "down"), down=True)
    assert failed > 6
    assert down, "a degraded incident is still contained, by a human"
    assert {(kind, target) for kind, target, _ in down} <= {(k, t) for k, t, _ in clean}
    assert all(approved for _, _, approved in down), down
    assert not any(target == HOST_OWNER for _, target, _ in down)
