"""Human decisions and approvals: a decision as a channel resolved it, its confirmation against
the store, refusals and acknowledgements, and the approval cards, reminders, escalations and final
notices the workflow's outbox delivers to humans (`HumanNotice`)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from orchestrator.models.activities import PolicyRecord
from orchestrator.models.base import FrozenModel
from orchestrator.models.tickets import TicketingStatusInput
from orchestrator.policy.evaluate import PolicyDecision
from tools.actions import Action


class DecisionKind(StrEnum):
    APPROVE = "approve"
    DENY = "deny"


class DecisionInput(FrozenModel):
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


class ConfirmDecisionInput(FrozenModel):
    """A decision as it reached the workflow, to confirm against the store's record of it."""

    incident_id: str
    decision: DecisionInput


class DecisionConfirmation(FrozenModel):
    """The store's answer: the decision as `ApprovalService` recorded it (its identity and
    groups, not the sender's), or why there is none."""

    confirmed: DecisionInput | None = None
    reason: str = ""
    # When `ApprovalService` recorded the decision (the store's clock): a decision recorded
    # before the request expired counts, however late its confirmation reaches the workflow.
    claimed_at: datetime | None = None


class RefusalCode(StrEnum):
    """Why a decision was refused, for channels that answer with a status (the HTTP API)."""

    UNKNOWN = "unknown"  # no such approval
    DECIDED = "decided"  # already approved, denied or expired
    SELF_APPROVAL = "self_approval"  # the requester or the agents' identity
    UNAUTHORISED = "unauthorised"  # not in an approver group for this request
    CHANGED = "changed"  # the action shown to the decider is not the one pending
    REFUSED = "refused"  # the workflow refused it (expired, repeat decider, stage, ...)
    UNAVAILABLE = "unavailable"  # Temporal could not be reached: nothing was decided


class DecisionAck(FrozenModel):
    approval_id: str
    status: str  # "recorded" (waiting for another approver), "approved", "denied"
    approvals: int
    required: int


class ModelNote(FrozenModel):
    """What the summaries model wrote for an approval card (unverified, escaped where shown)."""

    model: str
    narrative: str
    justification: str | None = None


class ApprovalRequestInput(FrozenModel):
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
    # The policy's decision that humans must decide, audited by `approvals.request` before it
    # stores the request (since `POLICY_AUDIT_PATCH`); None: audited by `audit.policy_decision`.
    # Never part of the message to humans.
    policy: PolicyRecord | None = None


class ApprovalNotice(StrEnum):
    REMINDER = "reminder"
    ESCALATION = "escalation"


class ApprovalNoticeInput(FrozenModel):
    approval_id: str
    incident_id: str
    notice: ApprovalNotice
    via_outbox: bool = False


class ApprovalFinalInput(FrozenModel):
    approval_id: str
    incident_id: str
    status: str  # approved | denied | expired
    decisions: list[DecisionInput]
    at: datetime
    via_outbox: bool = False


class HumanNotice(FrozenModel):
    """One message for the humans' channel (Slack), delivered in order by the workflow's outbox:
    exactly one is set."""

    request: ApprovalRequestInput | None = None
    notice: ApprovalNoticeInput | None = None
    final: ApprovalFinalInput | None = None
    ticketing: TicketingStatusInput | None = None
