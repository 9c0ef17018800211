"""Where a candidate disagrees with the current version: the `garrison.shadow/1` report.

Per incident: the verdict, the category and the playbook each side chose; the proposals only the
candidate made (added) or only the current version made (removed); for the proposals both made, a
changed risk score or a changed gate decision (allow / needs approval by N / deny: the approval
tier). An incident agrees when none of these differ; one that failed on either side disagrees.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from simulations.shadow.records import Proposal, ShadowIncident, ShadowSide
from tools.models import Verdict

REPORT_SCHEMA = "garrison.shadow/1"


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Change(_Model):
    action: str
    current: str
    candidate: str


class IncidentAgreement(_Model):
    id: str
    current_verdict: Verdict | None
    candidate_verdict: Verdict | None
    current_category: str | None
    candidate_category: str | None
    current_playbook: str | None
    candidate_playbook: str | None
    proposals_added: list[str] = Field(default_factory=list)
    proposals_removed: list[str] = Field(default_factory=list)
    risk_changes: list[Change] = Field(default_factory=list)
    decision_changes: list[Change] = Field(default_factory=list)
    errors: list[str] = Field(default_factory=list)

    @property
    def verdict_agrees(self) -> bool:
        return self.current_verdict == self.candidate_verdict

    @property
    def agrees(self) -> bool:
        return (
            not self.errors
            and self.verdict_agrees
            and self.current_category == self.candidate_category
            and self.current_playbook == self.candidate_playbook
            and not (self.proposals_added or self.proposals_removed)
            and not (self.risk_changes or self.decision_changes)
        )


class ShadowTotals(_Model):
    incidents: int
    agree: int
    disagree: int
    verdict_disagree: int
    category_changes: int
    playbook_changes: int
    proposals_added: int
    proposals_removed: int
    risk_changes: int
    decision_changes: int
    errors: int


class SideSummary(_Model):
    run_id: str
    knowledge_version: str
    knowledge_dir: str | None
    python: str
    overrides: dict[str, str]
    elapsed_s: float


class ShadowReport(_Model):
    schema_: str = Field(default=REPORT_SCHEMA, alias="schema")
    shadow_id: str
    current: SideSummary
    candidate: SideSummary
    totals: ShadowTotals
    incidents: list[IncidentAgreement]

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


def _decision(p: Proposal) -> str:
    return f"needs_approval({p.approvers})" if p.decision == "needs_approval" else p.decision


def _missing(incident_id: str, role: str) -> ShadowIncident:
    return ShadowIncident(id=incident_id, verdict=None, error=f"not replayed by the {role}")


def agreement(current: ShadowIncident, candidate: ShadowIncident) -> IncidentAgreement:
    """How the two sides' decisions on one incident compare."""
    mine = {p.action: p for p in current.proposals}
    theirs = {p.action: p for p in candidate.proposals}
    both = sorted(mine.keys() & theirs.keys())
    errors = [f"{role}: {i.error}" for role, i in (("current", current), ("candidate", candidate))]
    return IncidentAgreement(
        id=current.id,
        current_verdict=current.verdict,
        candidate_verdict=candidate.verdict,
        current_category=current.category,
        candidate_category=candidate.category,
        current_playbook=current.playbook,
        candidate_playbook=candidate.playbook,
        proposals_added=sorted(theirs.keys() - mine.keys()),
        proposals_removed=sorted(mine.keys() - theirs.keys()),
        risk_changes=[
            Change(action=a, current=str(mine[a].risk), candidate=str(theirs[a].risk))
            for a in both
            if mine[a].risk != theirs[a].risk
        ],
        decision_changes=[
            Change(action=a, current=_decision(mine[a]), candidate=_decision(theirs[a]))
            for a in both
            if _decision(mine[a]) != _decision(theirs[a])
        ],
        errors=[
            text
            for text, side in zip(errors, (current, candidate), strict=True)
            if side.error is not None or side.verdict is None
        ],
    )


def _summary(side: ShadowSide) -> SideSummary:
    return SideSummary(
        run_id=side.run_id,
        knowledge_version=side.knowledge_version,
        knowledge_dir=side.knowledge_dir,
        python=side.python,
        overrides=side.overrides,
        elapsed_s=side.elapsed_s,
    )


def compare_sides(shadow_id: str, current: ShadowSide, candidate: ShadowSide) -> ShadowReport:
    """The agreement table of two sides replayed over the same incidents (an incident only one
    side replayed counts as an error of the other)."""
    mine = {i.id: i for i in current.incidents}
    theirs = {i.id: i for i in candidate.incidents}
    rows = [
        agreement(mine.get(i, _missing(i, "current")), theirs.get(i, _missing(i, "candidate")))
        for i in sorted(mine.keys() | theirs.keys())
    ]
    totals = ShadowTotals(
        incidents=len(rows),
        agree=sum(r.agrees for r in rows),
        disagree=sum(not r.agrees for r in rows),
        verdict_disagree=sum(not r.verdict_agrees for r in rows),
        category_changes=sum(r.current_category != r.candidate_category for r in rows),
        playbook_changes=sum(r.current_playbook != r.candidate_playbook for r in rows),
        proposals_added=sum(len(r.proposals_added) for r in rows),
        proposals_removed=sum(len(r.proposals_removed) for r in rows),
        risk_changes=sum(len(r.risk_changes) for r in rows),
        decision_changes=sum(len(r.decision_changes) for r in rows),
        errors=sum(bool(r.errors) for r in rows),
    )
    return ShadowReport(
        shadow_id=shadow_id,
        current=_summary(current),
        candidate=_summary(candidate),
        totals=totals,
        incidents=rows,
    )
