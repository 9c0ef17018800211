"""A trainee's decisions scored against the incident's truth and against the agents, with the
debrief that explains the truth. Pure functions: the session runner feeds them the replay's
scorecard and the trainee's answers.

Per incident: a decision is right when it approves an action the truth expects or accepts, or
denies (or lets expire) one it does not; approving an unwanted action is over-response; denying
or letting expire an expected one is a miss. The agents are scored on the same truth: which
expected actions they proposed at all (asked, executed on their own, or refused by the policy),
which they executed without asking, and whether their verdict was right.
"""

from __future__ import annotations

from statistics import median

from pydantic import BaseModel, ConfigDict, Field

from orchestrator.models import DecisionKind
from simulations.matching import action_in
from simulations.scorer import ExecutedRecord, IncidentScore
from simulations.spec import ExpectedAction, Truth
from simulations.training.trainee import TraineeDecision
from tools.actions import ActionKind


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True)


class DecisionScore(_Model):
    kind: ActionKind
    target: str
    risk: int
    decision: str  # approve | deny | expired
    think_s: float
    expected: bool  # in the truth's expected or acceptable actions
    right: bool


class IncidentTraining(_Model):
    recorded_id: str
    title: str
    truth_verdict: str
    truth_category: str
    agents_verdict: str | None
    decisions: list[DecisionScore]
    right: int
    over_response: int = Field(description="approved actions the truth does not expect")
    missed: int = Field(description="expected actions denied or left to expire")
    expected_actions: int
    agents_proposed_expected: int = Field(description="expected actions the agents proposed")
    contained: int = Field(description="expected actions executed in the end")
    agents_unasked_over_response: int = Field(
        description="actions the agents executed without asking that the truth does not expect"
    )
    debrief: list[str]


class SessionScore(_Model):
    incidents: int
    decisions: int
    right: int
    accuracy: float = Field(description="right decisions / decisions (1.0 with none)")
    over_response: int
    missed: int
    expected_actions: int
    contained: int
    containment_recall: float = Field(description="expected actions executed / expected")
    agents_recall: float = Field(description="expected actions the agents proposed / expected")
    agents_verdict_accuracy: float
    median_think_s: float | None


def _wanted(truth: Truth) -> list[ExpectedAction]:
    return [*truth.expected_actions, *truth.acceptable_actions]


def _label(decision: DecisionKind | None) -> str:
    return "expired" if decision is None else decision.value


def score_decision(truth: Truth, decision: TraineeDecision) -> DecisionScore:
    expected = action_in(decision.kind, decision.target, _wanted(truth))
    approved = decision.decision is DecisionKind.APPROVE
    return DecisionScore(
        kind=decision.kind,
        target=decision.target,
        risk=decision.risk,
        decision=_label(decision.decision),
        think_s=decision.think_s,
        expected=expected,
        right=approved == expected,
    )


def score_incident(
    title: str, truth: Truth, run: IncidentScore, decisions: list[TraineeDecision]
) -> IncidentTraining:
    scored = [score_decision(truth, d) for d in decisions]
    executed = [(a.kind, a.target) for a in run.executed_actions]
    asked = {(d.kind, d.target.casefold()) for d in scored}
    proposed = executed + [(a.kind, a.target) for a in run.denied_actions]
    proposed += [(d.kind, d.target) for d in scored]
    expected = truth.expected_actions
    proposed_expected = [e for e in expected if any(action_in(k, t, [e]) for k, t in proposed)]
    contained = [e for e in expected if any(action_in(k, t, [e]) for k, t in executed)]
    unasked = [a for a in run.executed_actions if (a.kind, a.target.casefold()) not in asked]
    unasked_over = [a for a in unasked if not action_in(a.kind, a.target, _wanted(truth))]
    return IncidentTraining(
        recorded_id=run.id,
        title=title,
        truth_verdict=truth.verdict.value,
        truth_category=truth.category.value,
        agents_verdict=None if run.verdict is None else run.verdict.value,
        decisions=scored,
        right=sum(d.right for d in scored),
        over_response=sum(d.decision == "approve" and not d.expected for d in scored),
        missed=sum(d.decision != "approve" and d.expected for d in scored),
        expected_actions=len(expected),
        agents_proposed_expected=len(proposed_expected),
        contained=len(contained),
        agents_unasked_over_response=len(unasked_over),
        debrief=debrief(truth, run, scored, proposed_expected, unasked),
    )


def debrief(
    truth: Truth,
    run: IncidentScore,
    scored: list[DecisionScore],
    proposed_expected: list[ExpectedAction],
    unasked: list[ExecutedRecord],
) -> list[str]:
    """What happened, and why the truth is what it is, in sentences an analyst reads after."""
    lines = [f"Truth: {truth.verdict.value}, {truth.category.value}."]
    if truth.techniques:
        lines.append("Techniques: " + ", ".join(truth.techniques) + ".")
    compromised = truth.compromised
    named = [
        ("assets", compromised.assets),
        ("identities", compromised.identities),
        ("attacker addresses", compromised.indicators.ips),
        ("attacker domains", compromised.indicators.domains),
    ]
    parts = [f"{what} {', '.join(values)}" for what, values in named if values]
    if parts:
        lines.append("Compromised: " + "; ".join(parts) + ".")
    agents = "no verdict (the run failed)" if run.verdict is None else run.verdict.value
    right = run.verdict is not None and run.verdict == truth.verdict
    lines.append(f"The agents' verdict: {agents} ({'right' if right else 'wrong'}).")
    for d in scored:
        lines.append(_decision_line(d))
    for action in unasked:
        wanted = action_in(action.kind, action.target, _wanted(truth))
        verdict = "expected" if wanted else "not expected: over-response by the agents"
        lines.append(
            f"The agents executed {action.kind.value} {action.target} without asking ({verdict})."
        )
    for e in truth.expected_actions:
        if e not in proposed_expected:
            lines.append(
                f"Expected but never proposed by the agents: {e.kind.value} {e.target} "
                "(nobody could approve it; contain it by hand)."
            )
    if truth.notes:
        lines.append("Why: " + truth.notes)
    return lines


def _decision_line(d: DecisionScore) -> str:
    verb = {"approve": "approved", "deny": "denied", "expired": "let expire"}[d.decision]
    head = f"You {verb} {d.kind.value} {d.target} (risk {d.risk}) after {d.think_s:.1f} s: "
    if d.right and d.expected:
        return head + "right, the truth expects it."
    if d.right:
        return head + "right, the truth does not call for it."
    if d.expected:
        return head + "a miss, the truth expects it."
    return head + "over-response, the truth does not call for it."


def score_session(incidents: list[IncidentTraining]) -> SessionScore:
    decisions = [d for i in incidents for d in i.decisions]
    expected = sum(i.expected_actions for i in incidents)
    with_verdict = [i for i in incidents if i.agents_verdict == i.truth_verdict]
    return SessionScore(
        incidents=len(incidents),
        decisions=len(decisions),
        right=sum(d.right for d in decisions),
        accuracy=round(sum(d.right for d in decisions) / len(decisions), 3) if decisions else 1.0,
        over_response=sum(i.over_response for i in incidents),
        missed=sum(i.missed for i in incidents),
        expected_actions=expected,
        contained=sum(i.contained for i in incidents),
        containment_recall=(
            round(sum(i.contained for i in incidents) / expected, 3) if expected else 1.0
        ),
        agents_recall=(
            round(sum(i.agents_proposed_expected for i in incidents) / expected, 3)
            if expected
            else 1.0
        ),
        agents_verdict_accuracy=(
            round(len(with_verdict) / len(incidents), 3) if incidents else 1.0
        ),
        median_think_s=round(median(d.think_s for d in decisions), 3) if decisions else None,
    )
