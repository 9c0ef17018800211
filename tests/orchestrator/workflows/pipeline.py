"""A harness for IncidentWorkflow on the real pipeline: the real activities and agents over one
recorded incident's in-memory twins, a SQLite store and checkpointer in a temporary folder, and
a playbook step that can deliver more of the recording's alerts while it runs (as ingestion
would: stored, then signalled), so a test chooses exactly which round an alert lands in."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from temporalio import activity
from temporalio.client import Client, WorkflowHandle
from temporalio.worker import Worker

from orchestrator.activities.agents import AgentActivities
from orchestrator.activities.approvals import ApprovalActivities
from orchestrator.activities.guards import GuardActivities
from orchestrator.activities.records import RecordActivities
from orchestrator.activities.response import ResponseActivities
from orchestrator.approvals.notifier import LogNotifier
from orchestrator.backends import workflow_id
from orchestrator.composition import open_checkpointer, open_store
from orchestrator.ingest.pipeline import fingerprint
from orchestrator.models import (
    AlertsAdded,
    IncidentResult,
    IncidentStatusView,
    PlaybookStepInput,
    PlaybookStepResult,
)
from orchestrator.policy.model import load_policy
from orchestrator.settings import GarrisonSettings
from orchestrator.store.records import DecisionClaim, IncidentRecord, IncidentStatus
from orchestrator.store.repository import Store
from orchestrator.workflows.incident import IncidentWorkflow
from simulations.loader import LoadedIncident, load_all
from simulations.routing import RecordedBackends
from tests.orchestrator.workflows.harness import decision, workflow_input
from tools.models import Alert

CORPUS = Path(__file__).parents[3] / "simulations" / "incidents"

Handle = WorkflowHandle[IncidentWorkflow, IncidentResult]


def recorded(name: str) -> LoadedIncident:
    loaded = load_all([CORPUS / name])
    assert loaded.problems == []
    return loaded.incidents[0]


@dataclass
class LateDelivery:
    """Alerts to deliver from inside a playbook step: during the first step, or during the step
    that finishes the playbook (the last round)."""

    alerts: list[Alert]
    during: str = "first"  # "first" | "last"
    delivered: bool = False


@dataclass
class Pipeline:
    client: Client
    store: Store
    backends: RecordedBackends
    incident_id: str
    handle: Handle
    late: LateDelivery | None = None
    steps: list[PlaybookStepInput] = field(default_factory=list)

    async def deliver(self, alerts: list[Alert]) -> None:
        for alert in alerts:
            key = fingerprint(self.incident_id, "test", alert.uid)
            await self.store.add_alert(alert, self.incident_id, key)
        handle = self.client.get_workflow_handle(workflow_id(self.incident_id))
        await handle.signal("alerts_added", AlertsAdded(alert_uids=[a.uid for a in alerts]))

    async def result_approving_everything(self) -> IncidentResult:
        """The incident's result, with every approval it asks for granted by as many distinct
        analysts as it needs."""
        answered: set[str] = set()
        done = asyncio.ensure_future(self.handle.result())
        while not done.done():
            status: IncidentStatusView = await self.handle.query(IncidentWorkflow.status)
            for request in status.pending_approvals:
                if request.approval_id in answered:
                    continue
                answered.add(request.approval_id)
                for analyst in range(1, request.required_approvers + 1):  # two for the top tier
                    sent = decision(
                        request.approval_id,
                        request.action_hash,
                        f"analyst-{analyst}",
                        [request.approver_group],
                    )
                    await self.store.decisions.record_claim(  # as ApprovalService records it
                        DecisionClaim(
                            **sent.model_dump(exclude={"decision"}),
                            incident_id=self.incident_id,
                            decision=sent.decision.value,
                            at=datetime.now(UTC),
                        )
                    )
                    await self.handle.execute_update(IncidentWorkflow.decide, sent)
            await asyncio.wait([done], timeout=0.1)
        return done.result()


class SteppingWithArrivals:
    """`playbooks.step` of the real agents, delivering the pipeline's late alerts mid-step."""

    def __init__(self, agents: AgentActivities, pipeline: Callable[[], Pipeline]) -> None:
        self.agents = agents
        self.pipeline = pipeline

    @activity.defn(name="playbooks.step")
    async def step(self, request: PlaybookStepInput) -> PlaybookStepResult:
        result = await self.agents.playbook_step(request)
        pipeline = self.pipeline()
        pipeline.steps.append(request)
        late = pipeline.late
        due = late is not None and (late.during == "first" or result.finished)
        if late is not None and due and not late.delivered:
            late.delivered = True
            await pipeline.deliver(late.alerts)
        return result


def _activities(*holders: object) -> list[Callable[..., Any]]:
    found: list[Callable[..., Any]] = []
    for holder in holders:
        for name in dir(type(holder)):
            member = getattr(holder, name)
            if callable(member) and hasattr(member, "__temporal_activity_definition"):
                found.append(member)
    return found


@asynccontextmanager
async def running_recorded(
    client: Client,
    data_dir: Path,
    loaded: LoadedIncident,
    first: list[Alert],
    late: LateDelivery | None = None,
    **params: Any,
) -> AsyncIterator[Pipeline]:
    """Start the incident with the alerts `first`; `late` arrive during a playbook step."""
    settings = GarrisonSettings(data_dir=data_dir)
    queue = f"q-{uuid.uuid4().hex[:8]}"
    incident_id = f"late-{uuid.uuid4().hex[:8]}--{loaded.spec.id}"
    async with AsyncExitStack() as stack:
        store = await open_store(settings)
        stack.push_async_callback(store.close)
        checkpointer = await stack.enter_async_context(open_checkpointer(settings))
        backends = RecordedBackends([loaded])
        agents = AgentActivities(store, backends, checkpointer)
        holder: list[Pipeline] = []
        activities = [
            *_activities(
                RecordActivities(store, backends),
                ApprovalActivities(store, LogNotifier()),
                GuardActivities(store),
                ResponseActivities(store, backends),
                SteppingWithArrivals(agents, lambda: holder[0]),
            ),
            agents.triage,
        ]
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
        for alert in first:
            await store.add_alert(alert, incident_id, fingerprint(incident_id, "test", alert.uid))
        inputs = workflow_input(incident_id, queue, load_policy(None)).model_copy(update=params)
        handle = await client.start_workflow(
            IncidentWorkflow.run,
            inputs,
            id=workflow_id(incident_id),
            task_queue=queue,
            start_signal="alerts_added",
            start_signal_args=[AlertsAdded(alert_uids=[a.uid for a in first])],
        )
        pipeline = Pipeline(client, store, backends, incident_id, handle, late)
        holder.append(pipeline)
        yield pipeline
