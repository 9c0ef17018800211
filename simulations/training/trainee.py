"""The trainee: a person answering a training session's approval requests.

Each request is shown as an on-call analyst would see it live: the incident's alerts, the triage's
rationale, what the proposal rests on, the action with its risk and approvers. Nothing of the
incident's truth is shown before the debrief. The trainee's think time is measured on the wall
clock and becomes the answer's latency in the replay's virtual time, so a slow answer can still
miss the approval deadline, as it would live.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime

from orchestrator.console.views import proposal_of, rationale_of
from orchestrator.models import DecisionKind, PendingApprovalView
from orchestrator.store.repository import Store
from simulations.analyst import Answer
from tools.actions import ActionKind


@dataclass(frozen=True)
class AlertLine:
    time: datetime
    severity: str
    title: str
    host: str | None
    user: str | None


@dataclass(frozen=True)
class DecisionPrompt:
    """What the trainee sees for one request. Alert and rationale text is attacker-controlled:
    a presenter prints it as plain text, never as markup."""

    incident_id: str
    recorded_id: str
    title: str
    alerts: list[AlertLine]
    rationale: list[str]
    proposal_rationale: str
    evidence: list[str]
    kind: ActionKind
    target: str
    risk: int
    risk_factors: dict[str, int]
    required_approvers: int
    deadline: datetime


Presenter = Callable[[DecisionPrompt], Awaitable[DecisionKind | None]]


@dataclass(frozen=True)
class TraineeDecision:
    recorded_id: str
    kind: ActionKind
    target: str
    risk: int
    decision: DecisionKind | None  # None: the trainee let it expire
    think_s: float


@dataclass
class Trainee:
    """One trainee for one incident of a session; `decisions` collects every answer."""

    name: str
    recorded_id: str
    title: str
    store: Store
    present: Presenter
    decisions: list[TraineeDecision] = field(default_factory=list)

    async def answer(self, incident_id: str, request: PendingApprovalView) -> Answer:
        prompt = await self._prompt(incident_id, request)
        started = time.monotonic()
        decision = await self.present(prompt)
        think_s = round(time.monotonic() - started, 3)
        self.decisions.append(
            TraineeDecision(
                recorded_id=self.recorded_id,
                kind=request.action.kind,
                target=request.action.target,
                risk=request.risk,
                decision=decision,
                think_s=think_s,
            )
        )
        return Answer(decision, think_s, decider=self.name)

    async def _prompt(self, incident_id: str, request: PendingApprovalView) -> DecisionPrompt:
        alerts = await self.store.alerts_for(incident_id)
        audit = await self.store.audit_entries(incident_id)
        approval = await self.store.get_approval(request.approval_id)
        proposal = proposal_of(audit, request.approval_id)
        rationale, evidence = ("", []) if proposal is None else proposal[:2]
        return DecisionPrompt(
            incident_id=incident_id,
            recorded_id=self.recorded_id,
            title=self.title,
            alerts=[
                AlertLine(a.time, a.severity.value, a.title, a.entities.host, a.entities.user)
                for a in alerts
            ],
            rationale=rationale_of(audit),
            proposal_rationale=rationale,
            evidence=evidence,
            kind=request.action.kind,
            target=request.action.target,
            risk=request.risk,
            risk_factors={} if approval is None else dict(approval.risk_factors),
            required_approvers=request.required_approvers,
            deadline=request.deadline,
        )
