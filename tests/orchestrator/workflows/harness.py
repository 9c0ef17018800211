"""A harness for IncidentWorkflow tests: fake activities registered under the real activity names
(Temporal's own testing pattern), recording what the workflow asked of them, and a scripted
playbook that proposes the actions a test chooses."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from temporalio import activity
from temporalio.client import Client, WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from agents.models import ActionOutcome, ProposedAction, TriageResult
from orchestrator.models import (
    ActivityProfile,
    ApprovalFinalInput,
    ApprovalNoticeInput,
    ApprovalRequestInput,
    CloseIncidentInput,
    ConfirmDecisionInput,
    DecisionConfirmation,
    DecisionInput,
    DecisionKind,
    EndActionInput,
    ExecuteActionInput,
    ExecuteActionResult,
    ExecutionStatus,
    GatedProposal,
    HumanNotice,
    IncidentRef,
    IncidentResult,
    IncidentWorkflowInput,
    IsolationSlot,
    IsolationSlotInput,
    OpenTicketInput,
    PlaybookStepInput,
    PlaybookStepResult,
    PolicyRecord,
    TicketingStatusInput,
    TicketNote,
    TicketRef,
)
from orchestrator.policy.model import PolicyDocument, TargetFacts, load_policy
from orchestrator.workflows.incident import IncidentWorkflow
from tools.actions import Action, TargetKind, business_key
from tools.models import AssetKind, Category, Criticality, Severity, Verdict


def facts(
    kind: TargetKind = TargetKind.ASSET,
    asset_kind: AssetKind | None = AssetKind.WORKSTATION,
    criticality: Criticality | None = Criticality.MEDIUM,
    *,
    protected: bool = False,
    privileged: bool = False,
) -> TargetFacts:
    return TargetFacts(
        target_kind=kind,
        asset_kind=asset_kind,
        criticality=criticality,
        privileged_identity=privileged,
        protected=protected,
        known_entity=True,
        blast_radius=1,
    )


@dataclass
class Script:
    """What the fake playbook proposes in its first round, and what the fakes saw."""

    proposals: list[tuple[Action, TargetFacts]]
    confidence: float = 0.9
    executed: list[ExecuteActionInput] = field(default_factory=list)
    notices: list[ApprovalNoticeInput] = field(default_factory=list)
    requests: list[ApprovalRequestInput] = field(default_factory=list)
    finals: list[ApprovalFinalInput] = field(default_factory=list)
    announced: list[HumanNotice] = field(default_factory=list)
    outcomes: list[ActionOutcome] = field(default_factory=list)
    comments: list[str] = field(default_factory=list)
    closed: list[CloseIncidentInput] = field(default_factory=list)
    tickets_closed: list[CloseIncidentInput] = field(default_factory=list)
    ticketing: list[TicketingStatusInput] = field(default_factory=list)
    confirmations: list[DecisionConfirmation] = field(default_factory=list)
    ended: list[EndActionInput] = field(default_factory=list)  # response.end after a failure
    # The global isolation breaker's count, as the store keeps it: business key -> position.
    isolation_slots: dict[str, int] = field(default_factory=dict)


# Decisions as `ApprovalService` would have recorded them (the store's claims): `decision()`
# records one; a decision sent without one is what a forger sends straight to Temporal.
RECORDED_CLAIMS: dict[str, DecisionInput] = {}


class FakeActivities:
    def __init__(self, script: Script) -> None:
        self.script = script

    @activity.defn(name="tickets.open")
    async def open_ticket(self, request: OpenTicketInput) -> TicketRef:
        return TicketRef(incident_id=request.incident_id, ticket_id="T-1")

    @activity.defn(name="tickets.comment")
    async def comment(self, note: TicketNote) -> None:
        self.script.comments.append(note.text)

    @activity.defn(name="tickets.close")
    async def close_ticket(self, request: CloseIncidentInput) -> None:
        self.script.tickets_closed.append(request)

    @activity.defn(name="tickets.status")
    async def ticketing_status(self, status: TicketingStatusInput) -> None:
        self.script.ticketing.append(status)

    @activity.defn(name="agents.triage")
    async def triage(self, ref: IncidentRef) -> TriageResult:
        return TriageResult(
            verdict=Verdict.MALICIOUS,
            confidence=self.script.confidence,
            severity=Severity.HIGH,
            category=Category.CREDENTIAL_ACCESS,
            playbook_id="scripted",
        )

    @activity.defn(name="playbooks.step")
    async def step(self, request: PlaybookStepInput) -> PlaybookStepResult:
        first = request.resume is None
        if not first:
            self.script.outcomes.extend(request.resume or [])
        proposals = [
            GatedProposal(proposal=ProposedAction(action=a, rationale="scripted"), facts=f)
            for a, f in self.script.proposals
        ]
        return PlaybookStepResult(
            proposals=proposals if first else [],
            finished=not first,
            summary="scripted",
            verdict=Verdict.MALICIOUS,
            confidence=self.script.confidence,
        )

    @activity.defn(name="audit.policy_decision")
    async def policy_decision(self, record: PolicyRecord) -> None:
        return None

    @activity.defn(name="approvals.request")
    async def request(self, request: ApprovalRequestInput) -> None:
        self.script.requests.append(request)

    @activity.defn(name="approvals.notify")
    async def notify(self, notice: ApprovalNoticeInput) -> None:
        self.script.notices.append(notice)

    @activity.defn(name="approvals.finalize")
    async def finalize(self, final: ApprovalFinalInput) -> None:
        self.script.finals.append(final)

    @activity.defn(name="approvals.confirm")
    async def confirm(self, request: ConfirmDecisionInput) -> DecisionConfirmation:
        claim = RECORDED_CLAIMS.get(request.decision.decision_id)
        answer = (
            DecisionConfirmation(confirmed=claim)
            if claim is not None and claim == request.decision
            else DecisionConfirmation(reason="no such decision was recorded")
        )
        self.script.confirmations.append(answer)
        return answer

    @activity.defn(name="response.isolation_slot")
    async def isolation_slot(self, request: IsolationSlotInput) -> IsolationSlot:
        slots = self.script.isolation_slots
        key = business_key(request.incident_id, request.action)
        slots.setdefault(key, len(slots) + 1)
        return IsolationSlot(position=slots[key])

    @activity.defn(name="approvals.announce")
    async def announce(self, message: HumanNotice) -> None:
        self.script.announced.append(message)

    @activity.defn(name="response.end")
    async def end(self, request: EndActionInput) -> None:
        self.script.ended.append(request)

    @activity.defn(name="response.execute")
    async def execute(self, request: ExecuteActionInput) -> ExecuteActionResult:
        self.script.executed.append(request)
        return ExecuteActionResult(
            business_key=f"{request.incident_id}:{request.action.kind}:{request.action.target}",
            status=ExecutionStatus.EXECUTED,
            verified=True,
            inverse=request.action.inverse(),
        )

    @activity.defn(name="incidents.close")
    async def close(self, request: CloseIncidentInput) -> None:
        self.script.closed.append(request)

    def all(self) -> list[Callable[..., Any]]:
        return [
            self.open_ticket,
            self.comment,
            self.close_ticket,
            self.ticketing_status,
            self.triage,
            self.step,
            self.policy_decision,
            self.request,
            self.notify,
            self.finalize,
            self.confirm,
            self.isolation_slot,
            self.announce,
            self.execute,
            self.end,
            self.close,
        ]


def workflow_input(
    incident_id: str,
    queue: str,
    policy: PolicyDocument | None = None,
    activity: ActivityProfile | None = None,
) -> IncidentWorkflowInput:
    return IncidentWorkflowInput(
        incident_id=incident_id,
        group_key=f"test:{incident_id}",
        title="test incident",
        policy=policy or load_policy(None),
        requester="garrison-agent",
        activity=activity or ActivityProfile(),
        task_queue_agents=queue,
        task_queue_actions=queue,
    )


def incident_worker(client: Client, queue: str, activities: list[Callable[..., Any]]) -> Worker:
    """A worker for the incident workflow. No workflow cache: a test that stops it and starts
    another finds the workflow picked up at once, by replay, as after a crash."""
    return Worker(
        client,
        task_queue=queue,
        workflows=[IncidentWorkflow],
        activities=activities,
        max_cached_workflows=0,
    )


async def request_committed(handle: WorkflowHandle[Any, Any], approval_id: str) -> bool:
    """Whether the workflow task that opened this approval request has completed, i.e. its
    `approvals.request` activity is scheduled in the history. A worker with no workflow cache
    answers a query by replaying the history including events no workflow task has handled yet,
    so the status can show a request a moment before it exists for the server; an Update
    delivered together with those events is validated before them (an activation runs updates
    before activity results) and refused as "unknown approval"."""
    wanted = approval_id.encode()
    async for event in handle.fetch_history_events():
        scheduled = event.activity_task_scheduled_event_attributes
        if scheduled.activity_type.name == "approvals.request" and any(
            wanted in payload.data for payload in scheduled.input.payloads
        ):
            return True
    return False


async def start_incident(
    client: Client, inputs: IncidentWorkflowInput, task_timeout: timedelta | None = None
) -> WorkflowHandle[IncidentWorkflow, IncidentResult]:
    """`task_timeout` bounds how long a lost workflow task is waited for before it is dispatched
    again (the server's default is 10 s)."""
    return await client.start_workflow(
        IncidentWorkflow.run,
        inputs,
        id=f"incident-{inputs.incident_id}",
        task_queue=inputs.task_queue_agents,
        task_timeout=task_timeout,
        start_signal="alerts_added",
        start_signal_args=[{"alert_uids": ["a1"]}],
    )


def new_queue() -> str:
    return f"q-{uuid.uuid4().hex[:8]}"


def new_incident_id() -> str:
    return f"inc-{uuid.uuid4().hex[:8]}"


@asynccontextmanager
async def running_incident(
    env: WorkflowEnvironment, script: Script, fakes_type: type[FakeActivities] = FakeActivities
) -> AsyncIterator[tuple[WorkflowHandle[IncidentWorkflow, IncidentResult], Client]]:
    queue = new_queue()
    fakes = fakes_type(script)
    async with Worker(
        env.client, task_queue=queue, workflows=[IncidentWorkflow], activities=fakes.all()
    ):
        handle = await start_incident(env.client, workflow_input(new_incident_id(), queue))
        yield handle, env.client


def decision(
    approval_id: str,
    action_hash: str,
    user: str,
    groups: list[str],
    kind: DecisionKind = DecisionKind.APPROVE,
    decision_id: str | None = None,
    *,
    recorded: bool = True,
) -> DecisionInput:
    """A decision; `recorded` ones have a claim, as if `ApprovalService` had checked them."""
    sent = DecisionInput(
        decision_id=decision_id or uuid.uuid4().hex,
        approval_id=approval_id,
        action_hash=action_hash,
        user=user,
        groups=groups,
        decision=kind,
        channel="test",
    )
    if recorded:
        RECORDED_CLAIMS[sent.decision_id] = sent
    return sent
