"""The simulated on-call analyst of a recorded incident: who answers approval requests, how and
when. It decides from the incident's truth (the oracle) or by a fixed policy; it is the only part
of a simulation that reads the truth besides the scorer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from orchestrator.models import DecisionKind, PendingApprovalView
from simulations.matching import action_in
from simulations.spec import AnalystPolicy, AnalystSpec, Truth
from tools.actions import Action

PRIMARY_ANALYSTS: tuple[str, ...] = ("sim-analyst-1", "sim-analyst-2")
ESCALATION_ANALYSTS: tuple[str, ...] = ("sim-lead-1", "sim-lead-2")


@dataclass(frozen=True)
class Answer:
    """An analyst's answer to one approval request: the decision (None: never answered), the
    seconds after the request it came, and who gave it (None: the simulated on-call team)."""

    decision: DecisionKind | None
    latency_s: float
    decider: str | None = None


class Analyst(Protocol):
    """Who answers a replayed incident's approval requests: a simulated analyst, or a trainee."""

    async def answer(self, incident_id: str, request: PendingApprovalView) -> Answer: ...


@dataclass(frozen=True)
class SimulatedAnalyst:
    spec: AnalystSpec
    truth: Truth

    @property
    def latency_s(self) -> float:
        return self.spec.latency_s

    async def answer(self, incident_id: str, request: PendingApprovalView) -> Answer:
        return Answer(self.decide(request.action), self.latency_s)

    def decide(self, action: Action) -> DecisionKind | None:
        """The answer to a request for `action`; None when the analyst never answers."""
        match self.spec.policy:
            case AnalystPolicy.ABSENT:
                return None
            case AnalystPolicy.APPROVE_ALL:
                return DecisionKind.APPROVE
            case AnalystPolicy.DENY_ALL:
                return DecisionKind.DENY
            case AnalystPolicy.ORACLE:
                wanted = [*self.truth.expected_actions, *self.truth.acceptable_actions]
                if action_in(action.kind, action.target, wanted):
                    return DecisionKind.APPROVE
                return DecisionKind.DENY


def directory_groups(
    approver_groups: set[str], escalation_groups: set[str], trainees: tuple[str, ...] = ()
) -> dict[str, list[str]]:
    """The approver directory of a simulation: two analysts on call, two leads for escalations;
    a trainee (`garrison train`) is in every group, on call and lead."""
    groups: dict[str, list[str]] = {
        group: [*trainees, *PRIMARY_ANALYSTS] for group in approver_groups
    }
    for group in escalation_groups:
        members = groups.setdefault(group, list(trainees))
        members.extend(u for u in (*trainees, *ESCALATION_ANALYSTS) if u not in members)
    return groups


def deciders(answer: Answer, required: int, escalated: bool) -> tuple[str, ...]:
    """Who records the answer: the answering analyst first, then the simulated team (a
    two-approver tier's second approver follows the first), leads once the deadline passed."""
    team = PRIMARY_ANALYSTS + ESCALATION_ANALYSTS if escalated else PRIMARY_ANALYSTS
    first = () if answer.decider is None else (answer.decider,)
    return (*first, *(u for u in team if u != answer.decider))[:required]
