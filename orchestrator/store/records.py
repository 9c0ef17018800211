"""The store's records: what the rest of Garrison reads from and hands to the `Store`.

ORM rows never leave `orchestrator.store`; these frozen pydantic models do. Datetimes must be
tz-aware (they are stored and returned in UTC).
"""

from __future__ import annotations

import math
from enum import StrEnum
from typing import Annotated, Literal, Self

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from tools.actions import Action, ActionKind, business_key
from tools.models import (
    Alert,
    Category,
    IncidentStatus,
    LongText,
    Severity,
    ShortText,
    Verdict,
)


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class AlertRecord(_Record):
    fingerprint: ShortText
    incident_id: ShortText
    alert: Alert


class IncidentRecord(_Record):
    id: ShortText
    group_key: ShortText
    title: ShortText
    status: IncidentStatus = IncidentStatus.OPEN
    verdict: Verdict | None = None
    severity: Severity | None = None
    category: Category | None = None
    confidence: float | None = Field(default=None, ge=0.0, le=1.0)
    playbook: ShortText | None = None
    knowledge_version: ShortText | None = None
    opened_at: AwareDatetime
    closed_at: AwareDatetime | None = None
    summary: LongText | None = None


class ActionStatus(StrEnum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # ended without success: the vendor refused, or retries ran out
    ABANDONED = "abandoned"  # the workflow gave up on it (cancelled) before it ended
    ROLLED_BACK = "rolled_back"


class ActionRecord(_Record):
    """One side effect in the ledger. `business_key` is `tools.actions.business_key(...)`."""

    business_key: ShortText
    incident_id: ShortText
    action: Action
    risk: int = Field(ge=0, le=100)
    decision: ShortText
    approval_id: ShortText | None = None
    status: ActionStatus = ActionStatus.PENDING
    outcome: LongText = ""
    already_in_state: bool = False
    verified: bool = False
    inverse: Action | None = None
    created_at: AwareDatetime
    completed_at: AwareDatetime | None = None
    # How many times a change was sent to the vendor for this entry: a retry that finds the
    # state already there after one was sent records Garrison's change, not a pre-existing state.
    attempts: int = Field(default=0, ge=0)

    @model_validator(mode="after")
    def _key_matches_action(self) -> Self:
        expected = business_key(self.incident_id, self.action)
        if self.business_key != expected:
            raise ValueError(f"business_key must be {expected!r} for this incident and action")
        return self

    @property
    def kind(self) -> ActionKind:
        return self.action.kind

    @property
    def target(self) -> str:
        return self.action.target


class ApprovalStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    DENIED = "denied"
    EXPIRED = "expired"


class ApprovalDecision(_Record):
    user: ShortText
    decision: Literal["approve", "deny"]
    channel: ShortText
    at: AwareDatetime


class DecisionClaim(_Record):
    """A decision `ApprovalService` checked and stood behind (see tables.DecisionClaimRow)."""

    decision_id: ShortText
    approval_id: ShortText
    incident_id: ShortText
    action_hash: ShortText
    user: ShortText
    groups: list[ShortText]
    decision: Literal["approve", "deny"]
    channel: ShortText
    at: AwareDatetime


class ApprovalRecord(_Record):
    id: ShortText
    incident_id: ShortText
    action: Action
    action_hash: ShortText
    risk: int = Field(ge=0, le=100)
    risk_factors: dict[ShortText, int] = Field(default_factory=dict)
    required_approvers: int = Field(ge=1)
    approver_group: ShortText
    escalation_group: ShortText | None = None
    requester: ShortText
    policy_version: ShortText
    status: ApprovalStatus = ApprovalStatus.PENDING
    decisions: list[ApprovalDecision] = Field(default_factory=list)
    created_at: AwareDatetime
    deadline: AwareDatetime
    decided_at: AwareDatetime | None = None


class TicketStatus(StrEnum):
    OPEN = "open"
    CLOSED = "closed"


class TicketRecord(_Record):
    incident_id: ShortText
    ticket_id: ShortText
    status: TicketStatus = TicketStatus.OPEN
    comments: int = Field(default=0, ge=0)
    opened_at: AwareDatetime
    closed_at: AwareDatetime | None = None


AuditDetailValue = Annotated[str, Field(max_length=16_384)] | int | float | bool | None


class AuditEvent(_Record):
    """What to append to the audit log (AU-3: what, when, where, source, outcome, who)."""

    type: ShortText
    actor: ShortText
    outcome: ShortText
    source: ShortText
    incident_id: ShortText | None = None
    target: ShortText | None = None
    approval_ref: ShortText | None = None
    policy_decision_id: ShortText | None = None
    detail: dict[ShortText, AuditDetailValue] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _finite_numbers(self) -> Self:
        for key, value in self.detail.items():
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError(f"detail[{key!r}] must be a finite number")
        return self


class AuditRecord(AuditEvent):
    seq: int = Field(ge=1)
    at: AwareDatetime
    prev_hash: ShortText
    hash: ShortText


class AuditVerification(_Record):
    ok: bool
    entries: int
    first_bad_seq: int | None = None
    reason: str
    anchors_matched: int = 0  # distinct anchored seqs found in the chain with their hash
    anchored_seq: int = 0  # the newest of them: entries after it are protected by no anchor


class SlackMessage(_Record):
    """A message posted to Slack: `key` says what it is about, `ts` is how Slack names it."""

    key: ShortText
    channel: ShortText
    ts: ShortText
    thread_ts: ShortText | None = None
    payload: str = ""
    posted_at: AwareDatetime
