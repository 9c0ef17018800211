"""The incident workflow's input, the alerts signalled into it, and what a run carries to the run
it continues as."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from agents.models import ActionOutcome, TriageResult
from orchestrator.models.base import FrozenModel
from orchestrator.models.tickets import TicketOutboxCarry, TicketRef
from orchestrator.models.timeouts import ActivityProfile
from orchestrator.models.views import DeniedActionView, ExecutedActionView
from orchestrator.policy.model import PolicyDocument


class IncidentCarry(FrozenModel):
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


class IncidentWorkflowInput(FrozenModel):
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


class AlertsAdded(FrozenModel):
    alert_uids: list[str] = Field(max_length=1_000)
