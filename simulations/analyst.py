"""The simulated on-call analyst of a recorded incident: who answers approval requests, how and
when. It decides from the incident's truth (the oracle) or by a fixed policy; it is the only part
of a simulation that reads the truth besides the scorer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from orchestrator.models import DecisionKind
from simulations.matching import action_in
from simulations.spec import AnalystPolicy, AnalystSpec, Truth
from tools.actions import Action

PRIMARY_ANALYSTS: tuple[str, ...] = ("sim-analyst-1", "sim-analyst-2")
ESCALATION_ANALYSTS: tuple[str, ...] = ("sim-lead-1", "sim-lead-2")


class Analyst(Protocol):
    """Whoever answers a replay's approval requests: `decide` None never answers."""

    @property
    def latency_s(self) -> float: ...

    def decide(self, action: Action) -> DecisionKind | None: ...


@dataclass(frozen=True)
class SimulatedAnalyst:
    spec: AnalystSpec
    truth: Truth

    @property
    def latency_s(self) -> float:
        return self.spec.latency_s

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
    approver_groups: set[str], escalation_groups: set[str]
) -> dict[str, list[str]]:
    """The approver directory of a simulation: two analysts on call, two leads for escalations."""
    groups: dict[str, list[str]] = {group: list(PRIMARY_ANALYSTS) for group in approver_groups}
    for group in escalation_groups:
        groups.setdefault(group, []).extend(ESCALATION_ANALYSTS)
    return groups
