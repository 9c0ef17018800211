"""What a workflow shows of an incident: its phase and status (the status query), the actions it
executed, denied or awaits approval for, where its ticket stands, and its final result."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import Field

from orchestrator.models.base import FrozenModel
from tools.actions import Action
from tools.models import Verdict


class ApprovalStage(StrEnum):
    PRIMARY = "primary"
    ESCALATED = "escalated"


class PendingApprovalView(FrozenModel):
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


class ExecutedActionView(FrozenModel):
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


class DeniedActionView(FrozenModel):
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


class TicketingOutage(FrozenModel):
    """A time the ticketing vendor did not take the incident's ticket work: from the first
    attempt of the update that failed until it was delivered (None: not yet)."""

    since: datetime
    until: datetime | None = None


class TicketingView(FrozenModel):
    """Where the incident's ticket stands, off the containment path (`workflows/tickets.py`)."""

    ticket_id: str | None = None
    pending: int = 0  # ticket updates not yet delivered, in order
    delivered: int = 0
    dropped: int = 0  # refused by the vendor for good (a permanent error): never delivered
    unavailable_since: datetime | None = None  # set while the vendor is failing
    outages: list[TicketingOutage] = Field(default_factory=list)


class IncidentStatusView(FrozenModel):
    incident_id: str
    phase: IncidentPhase
    started_at: datetime
    verdict: Verdict | None = None
    pending_approvals: list[PendingApprovalView] = Field(default_factory=list)
    executed: list[ExecutedActionView] = Field(default_factory=list)
    denied: list[DeniedActionView] = Field(default_factory=list)
    approvals_requested: int = 0
    ticketing: TicketingView | None = None  # None: a run that kept its ticket on its own path


class IncidentResult(FrozenModel):
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
