"""Triage nodes: extract entities, score each alert, corroborate in telemetry, decide, and (with a
model) cross-check the decision.

Scoring, in points:
- per alert: severity weight + the heaviest technique weight + command-line tradecraft (capped
  at 6); a detection known to fire on ordinary activity counts for NOISY_FACTOR of its rule part;
- per incident: the five best distinct rules, + 1 per further tactic seen in significant alerts
  (kill-chain breadth, at most 4), + telemetry signals (capped at 8, maintenance counts negative);
- malicious at MALICIOUS_AT points or more; confidence is a logistic of the distance to it.
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

from agents.deps import AgentDeps
from agents.entities import AssetIndex, extract_entities
from agents.knowledge import (
    CATEGORY_PRIORITY,
    NOISY_FACTOR,
    NOISY_RULES,
    NOISY_TITLES,
    SEVERITY_WEIGHT,
    TACTIC_CATEGORY,
    TACTIC_DISCOUNT,
    cmdline_indicators,
    technique_tactic,
    technique_weight,
)
from agents.models import ExtractedEntities, TriageResult
from agents.routing import playbook_id_for
from agents.seam import ask_structured, truncate
from agents.telemetry import HostTelemetry, judge_process, read_host
from agents.triage.prompts import TRIAGE_INSTRUCTIONS, ModelVerdict
from agents.triage.state import AlertAssessment, TriageState
from tools.models import Alert, Category, Criticality, Severity, Verdict

MALICIOUS_AT = 6.0
SIGNIFICANT_ALERT = 2.0
TOP_RULES = 5
MAX_CORROBORATION = 8.0
MAX_HOSTS = 10


def is_noisy(alert: Alert) -> bool:
    if alert.rule.uid.strip().lower() in NOISY_RULES:
        return True
    return any(p.search(alert.rule.name) for p in NOISY_TITLES)


def assess_alert(alert: Alert) -> AlertAssessment:
    techniques = sorted({a.technique.strip().upper() for a in alert.attacks if a.technique})
    tactics = sorted(
        {
            t
            for a in alert.attacks
            if (t := (a.tactic or technique_tactic(a.technique) or "").strip().lower())
        }
    )
    rule_part = SEVERITY_WEIGHT[alert.severity] + max(
        (technique_weight(t) for t in techniques), default=0.5
    )
    noisy = is_noisy(alert)
    reasons = [f"{alert.severity.value} rule, techniques {','.join(techniques) or 'none'}"]
    if noisy:
        rule_part *= NOISY_FACTOR
        reasons.append("rule fires on ordinary activity")
    cmd = alert.entities.process.cmd_line if alert.entities.process else None
    tradecraft = cmdline_indicators(cmd)
    craft = min(6.0, sum(w for w, _ in tradecraft))
    reasons += [why for _, why in tradecraft]
    return AlertAssessment(
        uid=alert.uid,
        rule=alert.rule.uid or alert.rule.name,
        host=alert.entities.host,
        score=round(rule_part + craft, 2),
        noisy=noisy and craft == 0,
        tactics=tactics,
        techniques=techniques,
        reasons=reasons,
    )


def make_nodes(deps: AgentDeps) -> dict[str, Any]:
    tools = deps.tools

    async def extract_entities_node(state: TriageState) -> dict[str, Any]:
        environment = await tools.inventory.environment()
        entities = extract_entities(state["input"].alerts, AssetIndex(environment))
        return {"environment": environment, "entities": entities}

    async def score_alerts(state: TriageState) -> dict[str, Any]:
        return {"assessments": [assess_alert(a) for a in state["input"].alerts]}

    async def corroborate(state: TriageState) -> dict[str, Any]:
        alerts = state["input"].alerts
        index = AssetIndex(state["environment"])
        networks = state["environment"].internal_networks
        by_host: dict[str, list[Alert]] = defaultdict(list)
        for alert in alerts:
            if alert.entities.host:
                by_host[index.asset_id(alert.entities.host)].append(alert)
        notes: list[str] = []
        total = 0.0
        for host, host_alerts in list(by_host.items())[:MAX_HOSTS]:
            times = [a.time for a in host_alerts]
            telemetry = await read_host(tools.edr, host, min(times), max(times), logons=False)
            notes += telemetry.gaps
            score, found = _corroborate_host(telemetry, host_alerts, networks)
            total += score
            notes += found
        total = max(-4.0, min(MAX_CORROBORATION, total))
        return {"corroboration": notes, "corroboration_score": total}

    async def decide(state: TriageState) -> dict[str, Any]:
        return {"result": await _decide(state, tools)}

    async def consult_model(state: TriageState) -> dict[str, Any]:
        if deps.model is None:
            return {}
        deterministic = state["result"]
        answer = await ask_structured(
            deps.model, ModelVerdict, TRIAGE_INSTRUCTIONS, _model_data(state)
        )
        return {"result": merge_model_verdict(deterministic, answer, state["assessments"])}

    return {
        "extract_entities": extract_entities_node,
        "score_alerts": score_alerts,
        "corroborate": corroborate,
        "decide": decide,
        "consult_model": consult_model,
    }


def _corroborate_host(
    telemetry: HostTelemetry, alerts: list[Alert], networks: list[str]
) -> tuple[float, list[str]]:
    """Judge each alerting process once; a process with no record counts nothing."""
    score = 0.0
    notes: list[str] = []
    seen: set[int] = set()
    for alert in alerts:
        process = alert.entities.process
        if process is None or process.pid is None or process.pid in seen:
            continue
        seen.add(process.pid)
        record = telemetry.process(process.pid)
        if record is None:
            continue
        for signal in judge_process(record, telemetry, networks):
            score += signal.weight
            notes.append(("+" if signal.weight > 0 else "") + f"{signal.weight:g} {signal.text}")
    return score, notes


def _category(assessments: list[AlertAssessment]) -> Category:
    """The category whose strongest alert weighs most; further alerts add a quarter each."""
    scores: dict[Category, list[float]] = defaultdict(list)
    significant = [a for a in assessments if not a.noisy] or assessments
    for a in significant:
        for category in {TACTIC_CATEGORY.get(t) for t in a.tactics} - {None}:
            assert category is not None
            scores[category].append(a.score * TACTIC_DISCOUNT.get(category, 1.0))
    weights = {c: max(v) + 0.25 * (sum(v) - max(v)) for c, v in scores.items()}
    if not weights:
        return Category.EXECUTION
    best = max(weights.values())
    return next(c for c in CATEGORY_PRIORITY if weights.get(c, -1.0) >= best - 1e-9)


def incident_score(assessments: list[AlertAssessment], corroboration: float) -> float:
    best_by_rule: dict[str, float] = {}
    for a in assessments:
        best_by_rule[a.rule] = max(best_by_rule.get(a.rule, 0.0), a.score)
    top = sorted(best_by_rule.values(), reverse=True)[:TOP_RULES]
    tactics = {
        t
        for a in assessments
        if not a.noisy and a.score >= SIGNIFICANT_ALERT
        for t in a.tactics
        if t not in ("discovery", "impact")
    }
    breadth = min(4.0, max(0, len(tactics) - 1) * 1.0)
    return sum(top) + breadth + corroboration


def confidence_for(score: float) -> float:
    p = 1.0 / (1.0 + math.exp(-(score - MALICIOUS_AT) / 2.0))
    return round(p if score >= MALICIOUS_AT else 1.0 - p, 3)


async def _decide(state: TriageState, tools: Any) -> TriageResult:
    assessments = state["assessments"]
    corroboration = state.get("corroboration_score", 0.0)
    score = incident_score(assessments, corroboration)
    verdict = Verdict.MALICIOUS if score >= MALICIOUS_AT else Verdict.BENIGN
    category = _category(assessments) if verdict is Verdict.MALICIOUS else Category.BENIGN_ACTIVITY
    entities = state["entities"]
    severity = await _severity(assessments, verdict, entities, tools)
    significant = [a for a in assessments if not a.noisy]
    techniques = sorted({t for a in significant for t in a.techniques})
    rationale = [
        f"score {score:.1f} (malicious at {MALICIOUS_AT:g}); corroboration {corroboration:+.1f}",
        f"{len(assessments)} alerts, {len(significant)} not known to be noisy",
    ]
    for a in sorted(assessments, key=lambda a: -a.score)[:TOP_RULES]:
        rationale.append(truncate(f"alert {a.uid}: {a.score:g} pts; " + "; ".join(a.reasons), 300))
    rationale += [truncate(n, 300) for n in state.get("corroboration", [])[:10]]
    return TriageResult(
        verdict=verdict,
        confidence=confidence_for(score),
        severity=severity,
        category=category,
        techniques=techniques[:50],
        entities=entities,
        playbook_id=playbook_id_for(category),
        rationale=rationale,
    )


async def _severity(
    assessments: list[AlertAssessment], verdict: Verdict, entities: ExtractedEntities, tools: Any
) -> Severity:
    if verdict is Verdict.BENIGN:
        return Severity.LOW if any(not a.noisy for a in assessments) else Severity.INFORMATIONAL
    rank = Severity.MEDIUM.rank
    if max((a.score for a in assessments), default=0.0) >= 7.0:
        rank = Severity.HIGH.rank
    for host in entities.hosts[:MAX_HOSTS]:
        asset = await tools.inventory.get_asset(host)
        if asset is not None and asset.criticality in (Criticality.HIGH, Criticality.CRITICAL):
            rank += 1
            break
    for user in entities.users[:MAX_HOSTS]:
        identity = await tools.inventory.get_identity(user)
        if identity is not None and identity.privileged:
            rank += 1
            break
    return list(Severity)[min(rank, Severity.CRITICAL.rank)]


def _model_data(state: TriageState) -> dict[str, object]:
    """What the model sees: typed facts and truncated alert text, never instructions."""
    alerts = state["input"].alerts[:30]
    return {
        "alerts": [
            {
                "title": truncate(a.title, 200),
                "severity": a.severity.value,
                "techniques": [x.technique for x in a.attacks][:5],
                "host": truncate(a.entities.host or "", 100),
                "user": truncate(a.entities.user or "", 100),
                "cmd_line": truncate(a.entities.process.cmd_line or "", 400)
                if a.entities.process
                else "",
            }
            for a in alerts
        ],
        "telemetry_notes": [truncate(n, 200) for n in state.get("corroboration", [])[:10]],
    }


def merge_model_verdict(
    deterministic: TriageResult, answer: ModelVerdict | None, assessments: list[AlertAssessment]
) -> TriageResult:
    """The model may lower confidence and pick a category the alerts support; it can neither flip
    the deterministic verdict nor raise confidence. Disagreement is recorded."""
    if answer is None:
        return deterministic.model_copy(
            update={
                "rationale": [*deterministic.rationale, "model: no usable answer; deterministic"]
            }
        )
    notes = [f"model: {answer.verdict.value}, {answer.category.value}, {answer.confidence:.2f}"]
    update: dict[str, object] = {"model_used": True}
    if answer.verdict is not deterministic.verdict:
        notes.append(
            "model disagrees with the deterministic verdict; verdict kept, confidence lowered"
        )
        update["confidence"] = round(
            min(deterministic.confidence, 0.5 + (1 - answer.confidence) / 2), 3
        )
    else:
        update["confidence"] = round(min(deterministic.confidence, answer.confidence), 3)
        supported = {TACTIC_CATEGORY.get(t) for a in assessments if not a.noisy for t in a.tactics}
        if deterministic.verdict is Verdict.MALICIOUS and answer.category in supported:
            update["category"] = answer.category
            if answer.category is not deterministic.category:
                update["playbook_id"] = playbook_id_for(answer.category)
                notes.append(f"category {deterministic.category.value} -> {answer.category.value}")
    update["rationale"] = [*deterministic.rationale, *notes]
    return deterministic.model_copy(update=update)
