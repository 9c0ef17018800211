"""A live incident for late-alert tests: the real Ingestor and Dispatcher over a SQLite store, and
a worker running IncidentWorkflow with the real activities and agents over one recorded
incident's in-memory twins, on the session's Temporal dev server. The sender's grouping
(`correlation`) is the recording's id, so the incident is `<scope>--<recorded id>` and the twins
serve it by that suffix, as `garrison simulate` does."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle
from temporalio.worker import Worker

from orchestrator.activities.agents import AgentActivities
from orchestrator.activities.approvals import ApprovalActivities
from orchestrator.activities.guards import GuardActivities
from orchestrator.activities.records import RecordActivities
from orchestrator.activities.response import ResponseActivities
from orchestrator.approvals.notifier import LogNotifier
from orchestrator.backends import workflow_id
from orchestrator.composition import open_checkpointer, open_store
from orchestrator.ingest.dispatch import Dispatcher
from orchestrator.ingest.normalised import Normalised, Shape
from orchestrator.ingest.pipeline import Ingestor
from orchestrator.models import IncidentResult, IncidentStatusView, IncidentWorkflowInput
from orchestrator.policy.model import PolicyDocument, load_policy
from orchestrator.settings import GarrisonSettings
from orchestrator.store.records import DecisionClaim, IncidentRecord
from orchestrator.store.repository import Store
from orchestrator.workflows.incident import IncidentWorkflow
from simulations.loader import LoadedIncident
from simulations.routing import RecordedBackends
from tests.orchestrator.workflows.harness import decision
from tools.models import Alert

Handle = WorkflowHandle[IncidentWorkflow, IncidentResult]


@dataclass
class LiveIncident:
    client: Client
    store: Store
    backends: RecordedBackends
    ingest: Ingestor
    dispatcher: Dispatcher
    scope: str
    recorded_id: str

    @property
    def incident_id(self) -> str:
        return f"{self.scope}--{self.recorded_id}"

    def handle(self) -> Handle:
        """The incident's workflow: its latest run."""
        return self.client.get_workflow_handle_for(
            IncidentWorkflow.run, workflow_id(self.incident_id)
        )

    async def send(self, alerts: list[Alert]) -> list[str]:
        """Ingest the alerts as the recording's sender would, dispatch them; their incidents."""
        items = [
            Normalised(a, "test", Shape.GARRISON, a.model_dump(mode="json"), self.recorded_id)
            for a in alerts
        ]
        accepted = await self.ingest.accept(items, scope=self.scope)
        await self.dispatcher.dispatch_pending()
        return accepted.incidents

    async def runs(self, timeout_s: float = 15.0) -> list[WorkflowExecutionStatus | None]:
        """The statuses of every run of the incident's workflow, oldest first. The listing comes
        from Temporal's visibility store, which lags the workflow (a run whose result is already
        returned may still be listed as running): it is read again until its newest run is the
        one `describe` (read from the workflow's own state) gives, with the same status."""
        deadline = asyncio.get_running_loop().time() + timeout_s
        while True:
            found = [
                (execution.start_time, execution.run_id, execution.status)
                async for execution in self.client.list_workflows(
                    f'WorkflowId="{workflow_id(self.incident_id)}"'
                )
            ]
            found.sort(key=lambda run: run[0])
            latest = await self.handle().describe()
            settled = bool(found) and found[-1][1:] == (latest.run_id, latest.status)
            if settled or asyncio.get_running_loop().time() > deadline:
                return [status for _start, _run, status in found]
            await asyncio.sleep(0.1)

    async def result_approving_everything(self, timeout_s: float = 120.0) -> IncidentResult:
        """The latest run's result, every approval it asks for granted by as many distinct
        analysts as it needs (a top-tier request waits for two)."""
        handle = self.handle()
        answered: set[str] = set()
        done = asyncio.ensure_future(handle.result())
        deadline = asyncio.get_running_loop().time() + timeout_s
        while not done.done():
            if asyncio.get_running_loop().time() > deadline:
                done.cancel()
                raise TimeoutError(f"{self.incident_id} did not close in {timeout_s:.0f}s")
            status: IncidentStatusView = await handle.query(IncidentWorkflow.status)
            for request in status.pending_approvals:
                if request.approval_id not in answered:
                    answered.add(request.approval_id)
                    for analyst in range(1, request.required_approvers + 1):
                        await self._approve(
                            handle,
                            request.approval_id,
                            request.action_hash,
                            request.approver_group,
                            f"analyst-{analyst}",
                        )
            await asyncio.wait([done], timeout=0.1)
        return done.result()

    async def _approve(
        self, handle: Handle, approval_id: str, action_hash: str, group: str, analyst: str
    ) -> None:
        sent = decision(approval_id, action_hash, analyst, [group])
        await self.store.decisions.record_claim(  # as ApprovalService records it
            DecisionClaim(
                **sent.model_dump(exclude={"decision"}),
                incident_id=self.incident_id,
                decision=sent.decision.value,
                at=datetime.now(UTC),
            )
        )
        await handle.execute_update(IncidentWorkflow.decide, sent)


def _activities(*holders: object) -> list[Callable[..., Any]]:
    found: list[Callable[..., Any]] = []
    for holder in holders:
        for name in dir(type(holder)):
            member = getattr(holder, name)
            if callable(member) and hasattr(member, "__temporal_activity_definition"):
                found.append(member)
    return found


def _inputs(
    policy: PolicyDocument, queue: str
) -> Callable[[IncidentRecord], IncidentWorkflowInput]:
    def build(record: IncidentRecord) -> IncidentWorkflowInput:
        return IncidentWorkflowInput(
            incident_id=record.id,
            group_key=record.group_key,
            title=record.title,
            policy=policy,
            requester="garrison-agent",
            task_queue_agents=queue,
            task_queue_actions=queue,
        )

    return build


@asynccontextmanager
async def live_incident(
    client: Client, data_dir: Path, loaded: LoadedIncident, policy: PolicyDocument | None = None
) -> AsyncIterator[LiveIncident]:
    settings = GarrisonSettings(data_dir=data_dir)
    queue = f"late-{uuid.uuid4().hex[:8]}"
    policy = policy or load_policy(None)
    async with AsyncExitStack() as stack:
        store = await open_store(settings)
        stack.push_async_callback(store.close)
        checkpointer = await stack.enter_async_context(open_checkpointer(settings))
        backends = RecordedBackends([loaded])
        activities = _activities(
            RecordActivities(store, backends),
            ApprovalActivities(store, LogNotifier()),
            GuardActivities(store),
            ResponseActivities(store, backends),
            AgentActivities(store, backends, checkpointer),
        )
        await stack.enter_async_context(
            Worker(client, task_queue=queue, workflows=[IncidentWorkflow], activities=activities)
        )
        ingest = Ingestor(store, policy.ingest)
        stack.push_async_callback(ingest.aclose)
        dispatcher = Dispatcher(client, store, _inputs(policy, queue), queue)
        scope = f"t{uuid.uuid4().hex[:8]}"
        yield LiveIncident(client, store, backends, ingest, dispatcher, scope, loaded.spec.id)


__all__ = ["LiveIncident", "live_incident"]
