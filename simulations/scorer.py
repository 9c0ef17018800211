"""The scorer: a run over recorded incidents against their truths, as the `garrison.scorecard/1`
JSON report (the Scoring section of `shared/spec/recorded-incident-v1.md`).

Only executed consequential actions of the scored kinds count; inverse kinds run by a rollback are
listed in the report but never scored. Ratios over an empty set are 1.0 (nothing to get wrong).
An incident's time to contain is split at its containing action (the expected action executed last)
into approval wait and execution (the workflow's cumulative totals at that action) and agent time,
the rest. Fields added to the schema since its first version are optional, so older reports load.
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from simulations.matching import action_in, same_target
from simulations.spec import ExpectedAction, Truth
from simulations.vendor_effects import TicketCheck, VendorEffects
from tools.actions import SCORED_KINDS, ActionKind
from tools.models import Category, Verdict

SCHEMA = "garrison.scorecard/1"


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


# ---- what a run produced ------------------------------------------------------------------------


class ExecutedAction(_Model):
    kind: ActionKind
    target: str
    risk: int
    approved_by: list[str] = Field(default_factory=list)
    approval_required: bool = False
    protected: bool = False
    executed_at_s: float = Field(description="simulated seconds since the incident's first alert")
    approval_wait_s: float = Field(
        default=0.0,
        description="simulated seconds the incident had awaited approvals, up to this action",
    )
    execution_s: float = Field(
        default=0.0,
        description="simulated seconds the incident had spent executing actions, this one included",
    )


class DeniedAction(_Model):
    kind: ActionKind
    target: str
    risk: int
    reason: str


class IncidentRun(_Model):
    id: str
    verdict: Verdict | None = Field(description="final verdict; None when the run failed")
    executed_actions: list[ExecutedAction] = Field(default_factory=list)
    denied_actions: list[DeniedAction] = Field(default_factory=list)
    approvals_requested: int = 0
    elapsed_s: float = 0.0
    error: str | None = Field(default=None, description="why the replay failed, if it did")


# ---- the report ---------------------------------------------------------------------------------


class ActionRef(_Model):
    kind: ActionKind
    target: str


class ExecutedRecord(_Model):
    kind: ActionKind
    target: str
    risk: int
    approved_by: list[str]
    executed_at_s: float | None = None
    approval_wait_s: float | None = Field(default=None, description="cumulative, as in the run")
    execution_s: float | None = Field(default=None, description="cumulative, as in the run")


class DeniedRecord(_Model):
    kind: ActionKind
    target: str
    risk: int
    reason: str


class TimeToContain(_Model):
    median: float | None
    p90: float | None


class TimeToContainSplit(_Model):
    """Where the time to contain went; the parts sum to it (unless agent time was clamped at 0)."""

    agent_s: float = Field(description="the rest: triage, playbook steps, policy, tickets")
    approval_wait_s: float = Field(description="awaiting human decisions on approval requests")
    execution_s: float = Field(description="executing actions (`response.execute`)")


class TimeToContainSplitSummary(_Model):
    median: TimeToContainSplit | None = Field(
        default=None, description="each part's median over the contained incidents, separately"
    )


class ModelUsage(_Model):
    """An incident's use of the agents' model (none: the deterministic agents alone)."""

    model: str = Field(description="provider:model of the triage role (or replay:DIR)")
    calls: int
    answered: int = Field(description="questions that got a usable answer")
    input_tokens: int
    output_tokens: int
    cost_usd: float
    latency_s: float = Field(description="seconds spent waiting on the model, all calls")
    budget_exceeded: bool = False
    disagreements: list[str] = Field(
        default_factory=list, description="where the model and the rules differed"
    )


class IncidentScore(_Model):
    id: str
    verdict: Verdict | None
    expected_verdict: Verdict
    executed_actions: list[ExecutedRecord]
    denied_actions: list[DeniedRecord]
    approvals_requested: int
    time_to_contain_s: float | None
    category: Category
    expected_actions: list[ActionRef]
    missed_actions: list[ActionRef]
    unexpected_actions: list[ActionRef]
    unapproved_risky_actions: int
    time_to_contain_split: TimeToContainSplit | None = None
    # Emulated runs only: what the incident did to each vendor (by capability), and its ticket.
    vendors: dict[str, VendorEffects] | None = None
    ticket: TicketCheck | None = None
    model: ModelUsage | None = None  # runs with a model only
    error: str | None = None  # the replay failed: why (its verdict is None)


class Scorecard(_Model):
    model_config = ConfigDict(
        frozen=True, extra="forbid", populate_by_name=True, serialize_by_alias=True
    )

    schema_: Literal["garrison.scorecard/1"] = Field(default=SCHEMA, alias="schema")
    incidents: int
    elapsed_s: float
    verdict_accuracy: float
    containment_precision: float
    containment_recall: float
    over_response: int
    unapproved_risky_actions: int
    approvals_requested: int
    time_to_contain_s: TimeToContain
    per_incident: list[IncidentScore]
    incidents_per_s: float
    time_to_contain_split: TimeToContainSplitSummary = Field(
        default_factory=TimeToContainSplitSummary
    )
    faults: list[str] = Field(
        default_factory=list, description="the `--fault`s every incident's vendors ran under"
    )


# ---- scoring ------------------------------------------------------------------------------------


class _Tally(_Model):
    """One incident's counts, summed into the overall metrics."""

    score: IncidentScore
    executed: int  # scored actions executed
    correct: int  # of those, in expected or acceptable
    expected: int  # distinct expected actions
    hit: int  # of those, executed at least once


def score(
    runs: list[IncidentRun], truths: dict[str, Truth], threshold: int, elapsed_s: float
) -> Scorecard:
    """Score `runs` against `truths` (by incident id); `threshold` is the policy's approval line."""
    ids = [run.id for run in runs]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise ValueError(f"incidents scored twice: {', '.join(duplicates)}")
    missing = [i for i in ids if i not in truths]
    if missing:
        raise ValueError(f"no truth for incidents: {', '.join(missing)}")

    tallies = [_score_incident(run, truths[run.id], threshold) for run in runs]
    times = [t.score.time_to_contain_s for t in tallies if t.score.time_to_contain_s is not None]
    executed = sum(t.executed for t in tallies)
    expected = sum(t.expected for t in tallies)
    return Scorecard(
        incidents=len(runs),
        elapsed_s=round(elapsed_s, 3),
        verdict_accuracy=_ratio(
            sum(run.verdict is truths[run.id].verdict for run in runs), len(runs)
        ),
        containment_precision=_ratio(sum(t.correct for t in tallies), executed),
        containment_recall=_ratio(sum(t.hit for t in tallies), expected),
        over_response=executed - sum(t.correct for t in tallies),
        unapproved_risky_actions=sum(t.score.unapproved_risky_actions for t in tallies),
        approvals_requested=sum(run.approvals_requested for run in runs),
        time_to_contain_s=TimeToContain(
            median=_round_s(percentile(times, 0.5)), p90=_round_s(percentile(times, 0.9))
        ),
        per_incident=[t.score for t in tallies],
        incidents_per_s=round(len(runs) / elapsed_s, 3) if elapsed_s > 0 else 0.0,
        time_to_contain_split=_split_summary(
            [
                t.score.time_to_contain_split
                for t in tallies
                if t.score.time_to_contain_split is not None
            ]
        ),
    )


def _score_incident(run: IncidentRun, truth: Truth, threshold: int) -> _Tally:
    # A benign incident wants nothing: every action on it is over-response.
    malicious = truth.verdict is Verdict.MALICIOUS
    expected = _distinct(truth.expected_actions) if malicious else []
    wanted = [*expected, *truth.acceptable_actions] if malicious else []
    scored = [e for e in run.executed_actions if e.kind in SCORED_KINDS]

    unexpected = [e for e in scored if not action_in(e.kind, e.target, wanted)]
    firsts = [_first_execution(want, scored) for want in expected]
    hit = [e for e in firsts if e is not None]
    containing = _containing(hit) if expected and len(hit) == len(expected) else None
    unapproved = [
        e
        for e in scored
        if (e.risk > threshold or e.protected or e.approval_required) and not e.approved_by
    ]
    incident = IncidentScore(
        id=run.id,
        verdict=run.verdict,
        expected_verdict=truth.verdict,
        executed_actions=[_record(e) for e in run.executed_actions],
        denied_actions=[
            DeniedRecord(kind=d.kind, target=d.target, risk=d.risk, reason=d.reason)
            for d in run.denied_actions
        ],
        approvals_requested=run.approvals_requested,
        time_to_contain_s=_round_s(containing.executed_at_s) if containing is not None else None,
        category=truth.category,
        expected_actions=[ActionRef(kind=a.kind, target=a.target) for a in expected],
        missed_actions=[
            ActionRef(kind=a.kind, target=a.target)
            for a, first in zip(expected, firsts, strict=True)
            if first is None
        ],
        unexpected_actions=[ActionRef(kind=e.kind, target=e.target) for e in unexpected],
        unapproved_risky_actions=len(unapproved),
        time_to_contain_split=_split(containing) if containing is not None else None,
        error=run.error,
    )
    return _Tally(
        score=incident,
        executed=len(scored),
        correct=len(scored) - len(unexpected),
        expected=len(expected),
        hit=len(hit),
    )


def _record(e: ExecutedAction) -> ExecutedRecord:
    return ExecutedRecord(
        kind=e.kind,
        target=e.target,
        risk=e.risk,
        approved_by=e.approved_by,
        executed_at_s=_round_s(e.executed_at_s),
        approval_wait_s=_round_s(e.approval_wait_s),
        execution_s=_round_s(e.execution_s),
    )


def _distinct(actions: list[ExpectedAction]) -> list[ExpectedAction]:
    """The truth's actions without repeats (`PRD01` and `PRD01.pandalab.com` are one action)."""
    kept: list[ExpectedAction] = []
    for action in actions:
        if not action_in(action.kind, action.target, kept):
            kept.append(action)
    return kept


def _first_execution(want: ExpectedAction, executed: list[ExecutedAction]) -> ExecutedAction | None:
    matching = [
        e for e in executed if e.kind == want.kind and same_target(e.kind, e.target, want.target)
    ]
    return min(matching, key=lambda e: e.executed_at_s) if matching else None


def _containing(firsts: list[ExecutedAction]) -> ExecutedAction:
    """The expected action executed last (of a tie, the later one: its totals are larger)."""
    return max(firsts, key=lambda e: (e.executed_at_s, e.approval_wait_s + e.execution_s))


def _split(containing: ExecutedAction) -> TimeToContainSplit:
    """Split at the containing action: its cumulative wait and execution, and the rest."""
    total = round(containing.executed_at_s, 3)
    wait = round(containing.approval_wait_s, 3)
    execution = round(containing.execution_s, 3)
    return TimeToContainSplit(
        agent_s=round(max(total - wait - execution, 0.0), 3),
        approval_wait_s=wait,
        execution_s=execution,
    )


def _split_summary(splits: list[TimeToContainSplit]) -> TimeToContainSplitSummary:
    if not splits:
        return TimeToContainSplitSummary()

    def median(values: list[float]) -> float:
        return round(percentile(values, 0.5) or 0.0, 3)

    return TimeToContainSplitSummary(
        median=TimeToContainSplit(
            agent_s=median([s.agent_s for s in splits]),
            approval_wait_s=median([s.approval_wait_s for s in splits]),
            execution_s=median([s.execution_s for s in splits]),
        )
    )


def percentile(values: list[float], q: float) -> float | None:
    """The q-quantile (0..1) by linear interpolation between closest ranks; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * q
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def _ratio(part: int, whole: int) -> float:
    return round(part / whole, 4) if whole else 1.0


def _round_s(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds, 3)


def scorecard_rows(scorecard: Scorecard) -> list[tuple[str, str]]:
    """(metric, value) pairs for the CLI's summary table."""
    ttc = scorecard.time_to_contain_s
    return [
        ("incidents", str(scorecard.incidents)),
        ("elapsed_s", f"{scorecard.elapsed_s:.1f}"),
        ("incidents_per_s", f"{scorecard.incidents_per_s:.2f}"),
        ("verdict_accuracy", f"{scorecard.verdict_accuracy:.3f}"),
        ("containment_precision", f"{scorecard.containment_precision:.3f}"),
        ("containment_recall", f"{scorecard.containment_recall:.3f}"),
        ("over_response", str(scorecard.over_response)),
        ("unapproved_risky_actions", str(scorecard.unapproved_risky_actions)),
        ("approvals_requested", str(scorecard.approvals_requested)),
        ("time_to_contain_s.median", "-" if ttc.median is None else f"{ttc.median:.1f}"),
        ("time_to_contain_s.p90", "-" if ttc.p90 is None else f"{ttc.p90:.1f}"),
        ("time_to_contain_split.median", split_text(scorecard.time_to_contain_split.median)),
    ]


def split_text(split: TimeToContainSplit | None) -> str:
    """`agent 12.0 s, approval wait 300.0 s, execution 0.4 s`, or `-` when not contained."""
    if split is None:
        return "-"
    return (
        f"agent {split.agent_s:.1f} s, approval wait {split.approval_wait_s:.1f} s,"
        f" execution {split.execution_s:.1f} s"
    )
