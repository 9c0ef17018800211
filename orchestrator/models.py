"""Inputs and results of the workflows, their signals, updates and queries, and the activities.

One pydantic model per boundary (the SDK's pydantic data converter carries them). Payloads hold ids
and small summaries; alerts and telemetry stay in SQL.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from agents.models import ActionOutcome, InvestigationReport, ProposedAction, TriageResult
from orchestrator.policy.evaluate import PolicyDecision
from orchestrator.policy.model import PolicyDocument, TargetFacts
from tools.actions import Action
from tools.models import Severity, Verdict


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ActivityKind(StrEnum):
    """What an activity waits on, which decides its timeouts and retries (`GARRISON_ACTIVITIES__*`;
    `orchestrator/workflows/calls.py` maps each activity name to its kind)."""

    VENDOR_READS = "vendor_reads"  # telemetry and state reads at a vendor
    VENDOR_ACTIONS = "vendor_actions"  # containment and its rollback at a vendor
    TICKETS = "tickets"  # the ticketing vendor
    AGENTS = "agents"  # whole LangGraph graphs, with their vendor reads
    STORE = "store"  # Garrison's own database only


class KindTimeouts(_Model):
    """One kind's timeouts and retry policy. `heartbeat_s`: how long a silent activity (its worker
    died) waits before it is retried; `max_attempts` 0: without limit."""

    start_to_close_s: float
    heartbeat_s: float | None = None
    initial_retry_s: float = 1.0
    max_retry_s: float | None = None  # None: Temporal's default, 100 x the initial interval
    max_attempts: int = 8


class ActivityProfile(_Model):
    """Timeouts and retries of activities: settings, never constants in workflow code.

    `kinds` carries the settings per activity kind; a kind it lacks (every kind, in the inputs of
    workflows started before it existed) falls back to the flat fields below, which are exactly
    what those workflows ran with."""

    start_to_close_s: float = 120.0
    agent_start_to_close_s: float = 300.0
    heartbeat_s: float | None = None
    initial_retry_s: float = 1.0
    max_attempts: int = 8
    # How long a finished incident waits for its last messages to humans to be delivered (a
    # Slack outage), and for its ticket to catch up (a ticketing outage); delivery itself retries
    # without limit until then.
    notify_drain_s: float = 3600.0
    # Ticket work (the ticket, comments, the close note): attempts before the vendor counts as
    # unavailable (humans are told, then delivery goes on without limit), and the longest wait
    # between two attempts of an outbox (tickets and messages to humans).
    ticket_probe_attempts: int = Field(default=3, ge=1)
    outbox_retry_max_s: float = Field(default=60.0, gt=0)
    kinds: dict[ActivityKind, KindTimeouts] = Field(default_factory=dict)

    def timeouts(self, kind: ActivityKind | None, *, agent: bool = False) -> KindTimeouts:
        """The timeouts of `kind` (None: an activity no kind is known for), or the flat ones."""
        found = self.kinds.get(kind) if kind is not None else None
        if found is not None:
            return found
        return KindTimeouts(
            start_to_close_s=self.agent_start_to_close_s if agent else self.start_to_close_s,
            heartbeat_s=self.heartbeat_s,
            initial_retry_s=self.initial_retry_s,
            max_attempts=self.max_attempts,
        )


class IncidentWorkflowInput(_Model):
    incident_id: str
    group_key: str
    title: str
    policy: PolicyDocument
    requester: str = Field(description="identity that requests approvals: the agents' service id")
    activity: ActivityProfile = Field(default_factory=ActivityProfile)
    max_rounds: int = Field(default=4, ge=1, le=20)
    task_queue_agents: str
    task_queue_actions: str
    # Continue as new at a round boundary once the run's history has this many events (or the
    # server suggests it), so an incident that keeps receiving alerts never outgrows its history.
    continue_as_new_after_events: int = Field(default=10_000, ge=1)
    # Which isolations share the global isolation breaker's count: the deployment's (None), or,
    # in a simulation, the one recording's (recorded incidents happened years apart).
    breaker_scope: str | None = None
    # Set only by the workflow itself when it continues as new: what the next run carries on.
    carry: IncidentCarry | None = None


class AlertsAdded(_Model):
    alert_uids: list[str] = Field(max_length=1_000)


class IncidentCarry(_Model):
    """What a run of IncidentWorkflow hands to the run it continues as (continue-as-new at a round
    boundary, never while an approval is pending): the incident's facts so far and where its
    playbook pass stands. The playbook's own state is in the LangGraph checkpointer."""

    started_at: datetime
    alert_uids: list[str]
    handled_uids: list[str]
    ticket: TicketRef | None  # None only while a ticket outbox (`tickets`) has yet to open it
    triage: TriageResult
    pass_triage: TriageResult  # the triage the running playbook pass started from
    pass_index: int = 0
    pass_started: bool = False
    rounds: int = 0
    resume: list[ActionOutcome] | None = None
    pass_outcomes: list[ActionOutcome] = Field(default_factory=list)
    earlier_outcomes: list[ActionOutcome] = Field(default_factory=list)  # of finished passes
    executed: list[ExecutedActionView] = Field(default_factory=list)
    denied: list[DeniedActionView] = Field(default_factory=list)
    approvals_requested: int = 0
    isolations: int = 0
    approval_wait_s: float = 0.0
    execution_s: float = 0.0
    seen_decisions: list[str] = Field(default_factory=list)
    decided_approvals: dict[str, str] = Field(default_factory=dict)  # approval id -> outcome
    # The ticket outbox's undelivered work and its state (None: a run that kept the ticket itself).
    tickets: TicketOutboxCarry | None = None


class DecisionKind(StrEnum):
    APPROVE = "approve"
    DENY = "deny"


class DecisionInput(_Model):
    """One human decision, as resolved by a channel (Slack, CLI, API, simulated analyst).

    `groups` are the approver groups the channel resolved for `user` from the approver
    directory on the server side; the workflow checks them against the request's tier.
    """

    decision_id: str
    approval_id: str
    action_hash: str
    user: str
    groups: list[str]
    decision: DecisionKind
    channel: str


class ConfirmDecisionInput(_Model):
    """A decision as it reached the workflow, to confirm against the store's record of it."""

    incident_id: str
    decision: DecisionInput


class DecisionConfirmation(_Model):
    """The store's answer: the decision as `ApprovalService` recorded it (its identity and
    groups, not the sender's), or why there is none."""

    confirmed: DecisionInput | None = None
    reason: str = ""
    # When `ApprovalService` recorded the decision (the store's clock): a decision recorded
    # before the request expired counts, however late its confirmation reaches the workflow.
    claimed_at: datetime | None = None


class IsolationSlotInput(_Model):
    incident_id: str
    action: Action
    scope: str
    window_s: int


class IsolationSlot(_Model):
    position: int = Field(ge=1, description="isolations in the window, this one included")


class RefusalCode(StrEnum):
    """Why a decision was refused, for channels that answer with a status (the HTTP API)."""

    UNKNOWN = "unknown"  # no such approval
    DECIDED = "decided"  # already approved, denied or expired
    SELF_APPROVAL = "self_approval"  # the requester or the agents' identity
    UNAUTHORISED = "unauthorised"  # not in an approver group for this request
    CHANGED = "changed"  # the action shown to the decider is not the one pending
    REFUSED = "refused"  # the workflow refused it (expired, repeat decider, stage, ...)
    UNAVAILABLE = "unavailable"  # Temporal could not be reached: nothing was decided


class DecisionAck(_Model):
    approval_id: str
    status: str  # "recorded" (waiting for another approver), "approved", "denied"
    approvals: int
    required: int


class ApprovalStage(StrEnum):
    PRIMARY = "primary"
    ESCALATED = "escalated"


class PendingApprovalView(_Model):
    approval_id: str
    action: Action
    action_hash: str
    risk: int
    required_approvers: int
    approvers: list[str]
    requested_at: datetime
    deadline: datetime
    expires_at: datetime
    stage: ApprovalStage
    approver_group: str
    escalation_group: str


class ExecutedActionView(_Model):
    """An executed action. `approval_wait_s` and `execution_s` are cumulative for the incident at
    the time of this action (this action's own wait and execution included), in workflow time: the
    seconds spent awaiting human decisions on any request so far, and in `response.execute`."""

    action: Action
    risk: int
    approved_by: list[str]
    approval_required: bool
    protected: bool
    at: datetime
    already_in_state: bool = False
    approval_wait_s: float = 0.0
    execution_s: float = 0.0


class DeniedActionView(_Model):
    action: Action
    risk: int
    reason: str


class IncidentPhase(StrEnum):
    WAITING_FOR_ALERTS = "waiting_for_alerts"
    TRIAGE = "triage"
    RESPONDING = "responding"
    AWAITING_APPROVAL = "awaiting_approval"
    CLOSING = "closing"
    CLOSED = "closed"


class TicketingOutage(_Model):
    """A time the ticketing vendor did not take the incident's ticket work: from the first
    attempt of the update that failed until it was delivered (None: not yet)."""

    since: datetime
    until: datetime | None = None


class TicketingView(_Model):
    """Where the incident's ticket stands, off the containment path (`workflows/tickets.py`)."""

    ticket_id: str | None = None
    pending: int = 0  # ticket updates not yet delivered, in order
    delivered: int = 0
    dropped: int = 0  # refused by the vendor for good (a permanent error): never delivered
    unavailable_since: datetime | None = None  # set while the vendor is failing
    outages: list[TicketingOutage] = Field(default_factory=list)


class IncidentStatusView(_Model):
    incident_id: str
    phase: IncidentPhase
    started_at: datetime
    verdict: Verdict | None = None
    pending_approvals: list[PendingApprovalView] = Field(default_factory=list)
    executed: list[ExecutedActionView] = Field(default_factory=list)
    denied: list[DeniedActionView] = Field(default_factory=list)
    approvals_requested: int = 0
    ticketing: TicketingView | None = None  # None: a run that kept its ticket on its own path


class IncidentResult(_Model):
    incident_id: str
    verdict: Verdict
    confidence: float
    category: str
    started_at: datetime
    closed_at: datetime
    executed: list[ExecutedActionView]
    denied: list[DeniedActionView]
    approvals_requested: int
    summary: str
    ticketing: TicketingView | None = None  # None: a run that kept its ticket on its own path
    # the playbook of the last pass, as the routing file named it ("" in results from before)
    playbook: str = ""


# ---- activities ---------------------------------------------------------------------------------


class IncidentRef(_Model):
    incident_id: str


class OpenTicketInput(_Model):
    incident_id: str
    title: str


class TicketRef(_Model):
    incident_id: str
    ticket_id: str


class TicketNote(_Model):
    incident_id: str
    ticket_id: str
    text: str
    # The comment's idempotency key (`<incident>:<n>`), carried in its body as a marker; with
    # `recheck` (a delivery that may have landed already) the ticket is searched for it first.
    key: str | None = None
    recheck: bool = False


class TicketWorkKind(StrEnum):
    OPEN = "open"
    COMMENT = "comment"
    CLOSE = "close"


class TicketWork(_Model):
    """One update of the incident's ticket, queued in the ticket outbox and delivered in order.
    A comment's `seq` numbers it within the incident (its idempotency key); `close` is the
    closing note. The ticket id is filled in at delivery: it is unknown until the open lands."""

    kind: TicketWorkKind
    seq: int = 0
    text: str = ""
    close: CloseIncidentInput | None = None
    recheck: bool = False  # an earlier delivery of it may have landed (a continued run)


class TicketOutboxCarry(_Model):
    """The ticket outbox's state, carried across continue-as-new."""

    ticket: TicketRef | None = None
    queue: list[TicketWork] = Field(default_factory=list)
    next_seq: int = 1
    events: int = 0  # ticketing events reported so far (`TicketingStatusInput.seq`)
    view: TicketingView = Field(default_factory=TicketingView)


class TicketingEvent(StrEnum):
    UNAVAILABLE = "unavailable"  # the vendor failed an update's first attempts
    RESTORED = "restored"  # the update that failed was delivered
    DROPPED = "dropped"  # the vendor refused an update for good
    INCOMPLETE = "incomplete"  # the incident finished with ticket updates undelivered


class TicketingStatusInput(_Model):
    """A change in the ticket's delivery: audited (`tickets.status`) and told to humans through
    their own channel (`HumanNotice.ticketing`), which does not depend on the ticketing vendor."""

    incident_id: str
    event: TicketingEvent
    seq: int = Field(ge=1, description="the n-th such event of the incident: a message key")
    at: datetime
    since: datetime | None = None  # when the vendor started failing
    ticket_id: str | None = None
    pending: int = 0
    detail: str = Field(default="", max_length=1_000)


class PlaybookStepInput(_Model):
    incident_id: str
    playbook_id: str
    triage: TriageResult
    resume: list[ActionOutcome] | None = None
    # The checkpointer thread of this playbook pass; None: the incident id (the first pass).
    thread_id: str | None = None


class GatedProposal(_Model):
    proposal: ProposedAction
    facts: TargetFacts


class AlertsJoinedInput(_Model):
    """Alerts signalled into a triaged incident (`new_uids`), to compare with what the incident
    already had: the alerts it handled (`seen_uids`, which triage saw) and its latest triage."""

    incident_id: str
    new_uids: list[str]
    seen_uids: list[str]
    triage: TriageResult


class JoinedAlert(_Model):
    uid: str
    title: str
    severity: Severity
    host: str | None = None
    user: str | None = None
    new_entities: list[str] = Field(default_factory=list)  # "host:WS5", "user:..", "ip:.."
    raises_severity: bool = False


class AlertsJoinedResult(_Model):
    joined: list[JoinedAlert]
    missing: list[str] = Field(default_factory=list)  # signalled, not in the store

    @property
    def needs_triage(self) -> bool:
        return any(a.new_entities or a.raises_severity for a in self.joined)


class PlaybookStepResult(_Model):
    proposals: list[GatedProposal]
    finished: bool
    summary: str
    verdict: Verdict
    confidence: float
    report: InvestigationReport | None = None


class PolicyRecord(_Model):
    incident_id: str
    action: Action
    decision: PolicyDecision
    facts: TargetFacts


class ModelNote(_Model):
    """What the summaries model wrote for an approval card (unverified, escaped where shown)."""

    model: str
    narrative: str
    justification: str | None = None


class ApprovalRequestInput(_Model):
    approval_id: str
    incident_id: str
    action: Action
    action_hash: str
    decision: PolicyDecision
    requester: str
    approver_group: str
    escalation_group: str
    requested_at: datetime
    deadline: datetime
    expires_at: datetime
    rationale: str
    evidence: list[str]
    # Whether the rationale was written by a language model (the card labels it unverified).
    rationale_from_model: bool = False
    # The summaries role's narrative and this action's justification (model-generated: shown
    # labelled, beside the facts). Filled from the store by the activity that posts the card,
    # never by the workflow; None without a summaries model or when it gave no answer.
    model_note: ModelNote | None = None
    # True: the workflow delivers this to humans through its outbox (`HumanNotice`), not the
    # activity. False only in histories recorded before the outbox existed.
    via_outbox: bool = False


class ApprovalNotice(StrEnum):
    REMINDER = "reminder"
    ESCALATION = "escalation"


class ApprovalNoticeInput(_Model):
    approval_id: str
    incident_id: str
    notice: ApprovalNotice
    via_outbox: bool = False


class ApprovalFinalInput(_Model):
    approval_id: str
    incident_id: str
    status: str  # approved | denied | expired
    decisions: list[DecisionInput]
    at: datetime
    via_outbox: bool = False


class HumanNotice(_Model):
    """One message for the humans' channel (Slack), delivered in order by the workflow's outbox:
    exactly one is set."""

    request: ApprovalRequestInput | None = None
    notice: ApprovalNoticeInput | None = None
    final: ApprovalFinalInput | None = None
    ticketing: TicketingStatusInput | None = None


class ExecuteActionInput(_Model):
    incident_id: str
    action: Action
    risk: int
    approval_id: str | None = None
    approved_by: list[str] = Field(default_factory=list)
    policy_version: str


class ExecutionStatus(StrEnum):
    EXECUTED = "executed"
    ALREADY_IN_STATE = "already_in_state"
    FAILED = "failed"


class ExecuteActionResult(_Model):
    business_key: str
    status: ExecutionStatus
    verified: bool
    inverse: Action | None = None
    detail: str = ""


class EndActionInput(_Model):
    """The workflow's word that an action ended without success: `response.execute` failed for
    good (`failed`), or the workflow gave up on it, cancelled (`abandoned`)."""

    incident_id: str
    action: Action
    status: Literal["failed", "abandoned"]
    reason: str = Field(max_length=4_000)


class CloseIncidentInput(_Model):
    incident_id: str
    ticket_id: str
    verdict: Verdict
    confidence: float
    summary: str
    # True: the ticket is closed by the ticket outbox (`tickets.close`), not by `incidents.close`,
    # which then only closes the incident in the store.
    ticket_via_outbox: bool = False
    # The time to contain (`garrison_time_to_contain_seconds`): when the incident started and
    # its first executed action (None: nothing was executed, or a history from before these).
    started_at: datetime | None = None
    first_executed: ExecutedActionView | None = None


class RollbackInput(_Model):
    incident_id: str
    requested_by: str
    reason: str
    actions_queue: str = ""


class RollbackResult(_Model):
    reverted: list[Action]
    failed: list[str]


# Defined before the models they carry; resolve their references now the module is complete.
TicketWork.model_rebuild()
TicketOutboxCarry.model_rebuild()
IncidentCarry.model_rebuild()
IncidentWorkflowInput.model_rebuild()
