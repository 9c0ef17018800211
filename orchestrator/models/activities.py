"""Inputs and results of the incident's activities other than tickets and approvals: the
isolation breaker's slots, playbook steps and their gated proposals, alerts joining a triaged
incident, policy records, executing, ending and rolling back actions, closing the incident."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import Field

from agents.models import ActionOutcome, InvestigationReport, ProposedAction, TriageResult
from orchestrator.models.base import FrozenModel
from orchestrator.models.views import ExecutedActionView
from orchestrator.policy.evaluate import PolicyDecision
from orchestrator.policy.model import TargetFacts
from tools.actions import Action
from tools.models import Severity, Verdict


class IncidentRef(FrozenModel):
    incident_id: str


class IsolationSlotInput(FrozenModel):
    incident_id: str
    action: Action
    scope: str
    window_s: int


class IsolationSlot(FrozenModel):
    position: int = Field(ge=1, description="isolations in the window, this one included")


class PlaybookStepInput(FrozenModel):
    incident_id: str
    playbook_id: str
    triage: TriageResult
    resume: list[ActionOutcome] | None = None
    # The checkpointer thread of this playbook pass; None: the incident id (the first pass).
    thread_id: str | None = None


class GatedProposal(FrozenModel):
    proposal: ProposedAction
    facts: TargetFacts


class AlertsJoinedInput(FrozenModel):
    """Alerts signalled into a triaged incident (`new_uids`), to compare with what the incident
    already had: the alerts it handled (`seen_uids`, which triage saw) and its latest triage."""

    incident_id: str
    new_uids: list[str]
    seen_uids: list[str]
    triage: TriageResult


class JoinedAlert(FrozenModel):
    uid: str
    title: str
    severity: Severity
    host: str | None = None
    user: str | None = None
    new_entities: list[str] = Field(default_factory=list)  # "host:WS5", "user:..", "ip:.."
    raises_severity: bool = False


class AlertsJoinedResult(FrozenModel):
    joined: list[JoinedAlert]
    missing: list[str] = Field(default_factory=list)  # signalled, not in the store

    @property
    def needs_triage(self) -> bool:
        return any(a.new_entities or a.raises_severity for a in self.joined)


class PlaybookStepResult(FrozenModel):
    proposals: list[GatedProposal]
    finished: bool
    summary: str
    verdict: Verdict
    confidence: float
    report: InvestigationReport | None = None


class PolicyRecord(FrozenModel):
    incident_id: str
    action: Action
    decision: PolicyDecision
    facts: TargetFacts


class ExecuteActionInput(FrozenModel):
    incident_id: str
    action: Action
    risk: int
    approval_id: str | None = None
    approved_by: list[str] = Field(default_factory=list)
    policy_version: str
    # The workflow's decision to allow it, audited by this activity before anything else (since
    # `POLICY_AUDIT_PATCH`); None: audited already (`audit.policy_decision`, an approval request).
    policy: PolicyRecord | None = None


class ExecutionStatus(StrEnum):
    EXECUTED = "executed"
    ALREADY_IN_STATE = "already_in_state"
    FAILED = "failed"


class ExecuteActionResult(FrozenModel):
    business_key: str
    status: ExecutionStatus
    verified: bool
    inverse: Action | None = None
    detail: str = ""


class EndActionInput(FrozenModel):
    """The workflow's word that an action ended without success: `response.execute` failed for
    good (`failed`), or the workflow gave up on it, cancelled (`abandoned`)."""

    incident_id: str
    action: Action
    status: Literal["failed", "abandoned"]
    reason: str = Field(max_length=4_000)


class CloseIncidentInput(FrozenModel):
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


class RollbackInput(FrozenModel):
    incident_id: str
    requested_by: str
    reason: str
    actions_queue: str = ""


class RollbackResult(FrozenModel):
    reverted: list[Action]
    failed: list[str]
