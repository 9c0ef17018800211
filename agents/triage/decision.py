"""Triage decision: the verdict, severity, category and rationale from the scored alerts and
what corroboration found (`scoring.py` for the points and the category, `corroboration.py` for
telemetry).

Malicious at `scoring.MALICIOUS_AT` points, or whatever the points when an implant's doing or
infrastructure threat intelligence knows as an attacker's is seen, unless the incident is the
declared operators' work. Severity starts at medium (high for an alert of 7 points or more) and
rises one step for a high or critical asset and one for a privileged identity. The rationale
leads with what the ticket's triage note must show: degraded evidence, the operators' work,
threat intelligence.
"""

from __future__ import annotations

from agents.degraded import degraded_line, gaps_of
from agents.knowledge import CATEGORY_PRIORITY, KNOWLEDGE_VERSION
from agents.models import ExtractedEntities, TriageResult
from agents.seam import truncate
from agents.triage.claims import rationale_claims
from agents.triage.reputation import INTEL_STAGE_WEIGHT, IntelFinding, malicious
from agents.triage.scoring import (
    MALICIOUS_AT,
    TOP_RULES,
    category_weights,
    confidence_for,
    incident_category,
    incident_score,
)
from agents.triage.state import AlertAssessment, TriageState
from tools.inventory.base import InventoryReader
from tools.models import Category, Criticality, Severity, Verdict

MAX_HOSTS = 10  # hosts, and users, whose criticality may raise the severity


async def decide_incident(state: TriageState, inventory: InventoryReader) -> TriageResult:
    assessments = state["assessments"]
    corroboration = state.get("corroboration_score", 0.0)
    proven = malicious(state.get("intel", []))
    score = _verdict_score(state, proven)
    operators = state.get("operators")
    verdict = Verdict.MALICIOUS if score >= MALICIOUS_AT and not operators else Verdict.BENIGN
    stages = _with_intel_stages(state.get("stages", {}), proven)
    category = (
        incident_category(assessments, stages, corroboration)
        if verdict is Verdict.MALICIOUS
        else Category.BENIGN_ACTIVITY
    )
    entities = state["entities"]
    severity = await _severity(assessments, verdict, entities, inventory)
    significant = [a for a in assessments if not a.noisy]
    techniques = sorted({t for a in significant for t in a.techniques})
    gaps = gaps_of(state.get("gaps", []))
    rationale = _leading_lines(state, gaps)
    rationale += [
        f"score {score:.1f} (malicious at {MALICIOUS_AT:g}); corroboration {corroboration:+.1f}",
        f"{len(assessments)} alerts, {len(significant)} not known to be noisy",
    ]
    if verdict is Verdict.MALICIOUS:
        rationale.append(_category_line(category, assessments, stages))
    lines, claims = rationale_claims(
        state["input"].alerts,
        state["environment"],
        sorted(assessments, key=lambda a: -a.score)[:TOP_RULES],
        state.get("corroboration", []),
        state.get("claim_refs", {}),
    )
    return TriageResult(
        verdict=verdict,
        confidence=confidence_for(score),
        severity=severity,
        category=category,
        techniques=techniques[:50],
        entities=entities,
        rationale=rationale + lines,
        degraded=bool(gaps),
        evidence_gaps=gaps,
        knowledge_version=KNOWLEDGE_VERSION,
        claims=claims,
    )


def _verdict_score(state: TriageState, proven: list[IntelFinding]) -> float:
    score = incident_score(state["assessments"], state.get("corroboration_score", 0.0))
    if state.get("lineage") or proven:
        # an implant's doing is the attacker's whatever the rule that saw it weighs, and so is
        # a connection to infrastructure intelligence knows as an attacker's (reputation.py)
        score = max(score, MALICIOUS_AT)
    return score


def _with_intel_stages(stages: dict[str, float], proven: list[IntelFinding]) -> dict[str, float]:
    """Telemetry's stages, and the stage of each indicator intelligence proves an attacker's."""
    stages = dict(stages)
    for finding in proven:
        stages[finding.stage] = max(stages.get(finding.stage, 0.0), INTEL_STAGE_WEIGHT)
    return stages


def _leading_lines(state: TriageState, gaps: list[str]) -> list[str]:
    # first, so that the ticket's triage note (the first lines of the rationale) shows it
    operators = state.get("operators")
    lines = [degraded_line(gaps)] if gaps else []
    lines += [operators] if operators else []
    lines += [truncate(f.line(), 300) for f in state.get("intel", [])[:5]]
    return lines + state.get("intel_notes", [])[:3]


def _category_line(
    category: Category, assessments: list[AlertAssessment], stages: dict[str, float]
) -> str:
    weights = category_weights(assessments, stages)
    # ties in the order the category is chosen in: the same line on every run (the weights'
    # order comes from sets of tactics, whose order varies between processes)
    order = {c: n for n, c in enumerate(CATEGORY_PRIORITY)}
    ranked = sorted(weights.items(), key=lambda kv: (-kv[1], order.get(kv[0], len(order))))
    ranked = ranked[:4]
    return f"category {category.value}: " + ", ".join(f"{c.value} {w:g}" for c, w in ranked)


async def _severity(
    assessments: list[AlertAssessment],
    verdict: Verdict,
    entities: ExtractedEntities,
    inventory: InventoryReader,
) -> Severity:
    if verdict is Verdict.BENIGN:
        return Severity.LOW if any(not a.noisy for a in assessments) else Severity.INFORMATIONAL
    rank = Severity.MEDIUM.rank
    if max((a.score for a in assessments), default=0.0) >= 7.0:
        rank = Severity.HIGH.rank
    for host in entities.hosts[:MAX_HOSTS]:
        asset = await inventory.get_asset(host)
        if asset is not None and asset.criticality in (Criticality.HIGH, Criticality.CRITICAL):
            rank += 1
            break
    for user in entities.users[:MAX_HOSTS]:
        identity = await inventory.get_identity(user)
        if identity is not None and identity.privileged:
            rank += 1
            break
    return list(Severity)[min(rank, Severity.CRITICAL.rank)]
