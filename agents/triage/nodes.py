"""Triage nodes: extract entities, score each alert, corroborate in telemetry, decide, and (with a
model) cross-check the decision.

Scoring, in points:
- per alert: severity weight + the heaviest technique weight + command-line tradecraft (capped
  at 6); a detection known to fire on ordinary activity, or discovery by a system or machine
  account, counts for NOISY_FACTOR of its rule part;
- per incident: the five best distinct rules, + 1 per further tactic seen in significant alerts
  (kill-chain breadth, at most 4), + telemetry signals (capped at 8, maintenance counts negative);
- malicious at MALICIOUS_AT points or more, or when an implant started an alerting process
  (`stages.implant_lineage`), or a service was installed from another machine on an alert's
  host (`agents.remote_services`: a lateral movement, whatever alerted), or a shell or a
  hand-brought program used the microphone or webcam (`agents.capture`); confidence is a
  logistic of the distance to MALICIOUS_AT.
Category: the heaviest tactic of the alerts and of the stages telemetry shows (`stages.py`);
discovery only when nothing else is seen or telemetry does not show the attacker's processes. An
alert's tactic is read from its evidence where its rule's tag says more: credential access only
when it names LSASS or a dump, discovery (not C2) when its evidence is the ADSI schema cache.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from typing import Any

from agents.attention import hosts_by_attention
from agents.capture import CAPTURE_STAGE_WEIGHT, captures
from agents.degraded import degraded_line, gaps_of
from agents.deps import AgentDeps
from agents.entities import AssetIndex, extract_entities
from agents.evidence import alert_ref, unique
from agents.knowledge import (
    CATEGORY_PRIORITY,
    KNOWLEDGE_VERSION,
    NOISY_FACTOR,
    NOISY_RULES,
    NOISY_TITLES,
    SEVERITY_WEIGHT,
    TACTIC_CATEGORY,
    TACTIC_DISCOUNT,
    cmdline_indicators,
    is_system_account,
    technique_tactic,
    technique_weight,
)
from agents.models import EvidenceRef, ExtractedEntities, TriageResult
from agents.reads import retrying_edr
from agents.remote_services import remote_installs
from agents.seam import ask_structured, truncate
from agents.telemetry import HostTelemetry, read_host
from agents.triage.claims import corroborate_host, rationale_claims, refer_lines
from agents.triage.discovery import implant_discovery, saw_a_directory_query
from agents.triage.maintenance import maintenance_reason
from agents.triage.model_verdict import merge_model_verdict, model_data
from agents.triage.operators import operator_work
from agents.triage.prompts import TRIAGE_INSTRUCTIONS, ModelVerdict
from agents.triage.reputation import INTEL_STAGE_WEIGHT, look_up, malicious
from agents.triage.stages import (
    LATERAL_STAGE_WEIGHT,
    implant_lineage,
    incident_movements,
    telemetry_stages,
)
from agents.triage.state import AlertAssessment, TriageState
from tools.models import Alert, Category, Criticality, Severity, Verdict

MALICIOUS_AT = 6.0
SIGNIFICANT_ALERT = 2.0
TOP_RULES = 5
LSASS_EVIDENCE = re.compile(r"lsass|dump|\.dmp\b", re.I)
MAX_CORROBORATION = 8.0
MAX_HOSTS = 10
ATTACKER_CORROBORATION = 2.0  # telemetry points that make an alerting process the attacker's


def is_noisy(alert: Alert) -> bool:
    if alert.rule.uid.strip().lower() in NOISY_RULES:
        return True
    return any(p.search(alert.rule.name) for p in NOISY_TITLES)


def is_platform_discovery(alert: Alert, tactics: list[str]) -> bool:
    """Enumeration by the system's own accounts (SYSTEM, service and machine accounts): a domain
    controller's machine account reading its password policy, configuration management querying
    the directory. An intruder enumerates with a person's account, or with tradecraft that
    `assess_alert` still counts in full."""
    user = alert.entities.user
    return (
        bool(tactics)
        and set(tactics) <= {"discovery"}
        and user is not None
        and is_system_account(user)
    )


def _names_credential_store(alert: Alert, techniques: list[str]) -> bool:
    """An alert whose only credential technique is LSASS memory (T1003.001) stages credential
    access only when it names LSASS or a dump; a generic process-access rule tagged T1003.001
    (a hack tool opening notepad to inject into it) says a tool ran, not that secrets left."""
    credential = [t for t in techniques if technique_tactic(t) == "credential-access"]
    if not credential or any(not t.startswith("T1003.001") for t in credential):
        return True
    e = alert.entities
    text = " ".join(
        v or ""
        for v in (
            alert.rule.name,
            e.process.name if e.process else None,
            e.process.cmd_line if e.process else None,
            e.file.path if e.file else None,
        )
    )
    return bool(LSASS_EVIDENCE.search(text[:8_192]))


def assess_alert(alert: Alert) -> AlertAssessment:
    techniques = sorted({a.technique.strip().upper() for a in alert.attacks if a.technique})
    # the tactic the rule declares and the one its technique belongs to: Sigma tags a Run key
    # write "privilege-escalation" and a remote service creation "persistence", an analyst reads
    # T1547 as persistence and T1021 as lateral movement
    tactics = sorted(
        {
            t
            for a in alert.attacks
            for t in ((a.tactic or "").strip().lower(), technique_tactic(a.technique) or "")
            if t
        }
    )
    if "credential-access" in tactics and not _names_credential_store(alert, techniques):
        tactics.remove("credential-access")
    if "command-and-control" in tactics and saw_a_directory_query(alert):
        tactics = sorted({*tactics, "discovery"} - {"command-and-control"})
    rule_part = SEVERITY_WEIGHT[alert.severity] + max(
        (technique_weight(t) for t in techniques), default=0.5
    )
    noisy = is_noisy(alert)
    reasons = [f"{alert.severity.value} rule, techniques {','.join(techniques) or 'none'}"]
    if noisy:
        rule_part *= NOISY_FACTOR
        reasons.append("rule fires on ordinary activity")
    elif is_platform_discovery(alert, tactics):
        noisy = True
        rule_part *= NOISY_FACTOR
        reasons.append("discovery by a system or machine account")
    cmd = alert.entities.process.cmd_line if alert.entities.process else None
    tradecraft = cmdline_indicators(cmd)
    craft = min(6.0, sum(w for w, _ in tradecraft))
    reasons += [why for _, why in tradecraft]
    return AlertAssessment(
        uid=alert.uid,
        rule=alert.rule.uid or alert.rule.name,
        host=alert.entities.host,
        score=round(rule_part + craft, 2),
        stage_weight=round(rule_part, 2),
        noisy=noisy and craft == 0,
        tactics=tactics,
        techniques=techniques,
        reasons=reasons,
    )


def make_nodes(deps: AgentDeps) -> dict[str, Any]:
    tools = deps.tools
    edr = retrying_edr(tools.edr, deps.reads)  # one retry budget per graph run

    async def extract_entities_node(state: TriageState) -> dict[str, Any]:
        environment = await tools.inventory.environment()
        entities = extract_entities(state["input"].alerts, AssetIndex(environment))
        intel, notes = await look_up(tools.intel, entities)
        return {
            "environment": environment,
            "entities": entities,
            "intel": intel,
            "intel_notes": notes,
        }

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
        found_stages: list[tuple[str, float, str]] = []
        lineage: list[str] = []
        gaps: list[str] = []
        maintenance: dict[str, str] = {}
        telemetries: dict[str, HostTelemetry] = {}
        refs: dict[str, list[EvidenceRef]] = {}  # a line's records, taken from those judged
        # the hosts of the most significant alerts first: background alerts on a dozen
        # servers must not fill the cap (agents/attention.py); a cut is said
        attention = hosts_by_attention(alerts, state["assessments"], index, list(by_host))
        gaps += attention.gaps
        notes += attention.notes
        for host in attention.hosts:
            host_alerts = by_host[host]
            times = [a.time for a in host_alerts]
            telemetry = await read_host(edr, host, min(times), max(times), registrations=True)
            telemetries[host] = telemetry
            gaps += telemetry.gaps
            marks = (len(notes), len(found_stages), len(lineage))
            score, found, found_refs = corroborate_host(telemetry, host_alerts, networks)
            total += score
            notes += found
            refs |= found_refs
            found_stages += telemetry_stages(telemetry, host_alerts, index)
            lineage += implant_lineage(telemetry, host_alerts)
            lineage += [x for x in implant_discovery(telemetry, host_alerts) if x not in lineage]
            for capture in captures(telemetry):  # an implant recording: an attack
                lineage.append("capture by the attacker's program: " + capture.summary())
                found_stages.append(
                    ("collection", CAPTURE_STAGE_WEIGHT, "stage collection: " + capture.summary())
                )
            for install in remote_installs(telemetry, index):  # a movement proven: an attack
                lineage.append("remote service install: " + install.summary())
                found_stages.append(
                    (
                        "lateral-movement",
                        LATERAL_STAGE_WEIGHT,
                        "stage lateral movement: " + install.summary(),
                    )
                )
            for alert in host_alerts:
                if (why := maintenance_reason(alert, telemetry)) is not None:
                    maintenance[alert.uid] = why
                    refs.setdefault(why, unique([alert_ref(alert, host)]))
            drawn = [why for _, _, why in found_stages[marks[1] :]]
            drawn = [*notes[marks[0] :], *drawn, *lineage[marks[2] :]]
            refer_lines(refs, drawn, telemetry, host_alerts)
        assessments = [_discount_maintenance(a, maintenance) for a in state["assessments"]]
        found_stages += incident_movements(alerts, assessments, index)
        stages: dict[str, float] = {}
        for tactic, weight, why in found_stages:
            stages[tactic] = max(stages.get(tactic, 0.0), weight)
            notes.append(why)
        total = max(-4.0, min(MAX_CORROBORATION, total))
        # a host the attention cap left unread proves nothing: operators' work needs them all
        protected = {p.strip().lower() for p in state["environment"].protected}
        operators = (
            operator_work(alerts, index, telemetries, protected)
            if set(by_host) <= set(telemetries) and not lineage
            else None
        )
        return {
            "operators": operators,
            "assessments": assessments,
            "corroboration": notes + lineage + list(maintenance.values()),
            "corroboration_score": total,
            "stages": stages,
            "lineage": lineage,
            "gaps": gaps,
            "claim_refs": refs,
        }

    async def decide(state: TriageState) -> dict[str, Any]:
        return {"result": await _decide(state, tools)}

    async def consult_model(state: TriageState) -> dict[str, Any]:
        if deps.model is None:
            return {}
        deterministic = state["result"]
        answer = await ask_structured(
            deps.model, ModelVerdict, TRIAGE_INSTRUCTIONS, model_data(state)
        )
        return {"result": merge_model_verdict(deterministic, answer, state["assessments"])}

    return {
        "extract_entities": extract_entities_node,
        "score_alerts": score_alerts,
        "corroborate": corroborate,
        "decide": decide,
        "consult_model": consult_model,
    }


def _discount_maintenance(
    assessment: AlertAssessment, maintenance: dict[str, str]
) -> AlertAssessment:
    """An alert proven to be the platform's own maintenance (`maintenance.py`) counts nothing
    toward the verdict or the category."""
    why = maintenance.get(assessment.uid)
    if why is None:
        return assessment
    return assessment.model_copy(
        update={
            "score": 0.0,
            "stage_weight": 0.0,
            "noisy": True,
            "maintenance": True,
            "reasons": [*assessment.reasons, "platform maintenance: " + why],
        }
    )


def category_weights(
    assessments: list[AlertAssessment], stages: dict[str, float] | None = None
) -> dict[Category, float]:
    """Per category: its strongest distinct rule plus a quarter of the others, on severity and
    technique only (command-line tradecraft says an attack is on, not which stage it is at).
    Execution and defense evasion are discounted and get no breadth bonus: every intrusion
    executes something, so a persistence write, a lateral hop or a C2 channel is not drowned by
    a dozen generic PowerShell rules."""
    by_rule: dict[tuple[Category, str], float] = {}
    counted = [a for a in assessments if not a.maintenance]
    significant = [a for a in counted if not a.noisy] or counted
    for a in significant:
        for category in {TACTIC_CATEGORY.get(t) for t in a.tactics} - {None}:
            assert category is not None
            key = (category, a.rule)
            by_rule[key] = max(by_rule.get(key, 0.0), a.stage_weight)
    scores: dict[Category, list[float]] = defaultdict(list)
    for (category, _), weight in by_rule.items():
        scores[category].append(weight * TACTIC_DISCOUNT.get(category, 1.0))
    for tactic, weight in (stages or {}).items():
        if (category := TACTIC_CATEGORY.get(tactic)) is not None:
            scores[category].append(weight)
    return {
        c: round(max(v) + (0.0 if c in TACTIC_DISCOUNT else 0.25 * (sum(v) - max(v))), 2)
        for c, v in scores.items()
    }


def _category(
    assessments: list[AlertAssessment],
    stages: dict[str, float] | None = None,
    corroboration: float = 0.0,
) -> Category:
    """The heaviest category. Discovery is the category only of discovery alone: once telemetry
    shows the acting processes are the attacker's (tradecraft, an implant), the enumeration is
    one step of hands-on-keyboard activity and the heaviest other stage names the incident."""
    weights = category_weights(assessments, stages)
    if corroboration >= ATTACKER_CORROBORATION and len(weights) > 1:
        weights.pop(Category.DISCOVERY, None)
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
    proven = malicious(state.get("intel", []))
    if state.get("lineage") or proven:
        # an implant's doing is the attacker's whatever the rule that saw it weighs, and so is
        # a connection to infrastructure intelligence knows as an attacker's (reputation.py)
        score = max(score, MALICIOUS_AT)
    operators = state.get("operators")
    verdict = Verdict.MALICIOUS if score >= MALICIOUS_AT and not operators else Verdict.BENIGN
    stages = dict(state.get("stages", {}))
    for finding in proven:
        stages[finding.stage] = max(stages.get(finding.stage, 0.0), INTEL_STAGE_WEIGHT)
    category = (
        _category(assessments, stages, corroboration)
        if verdict is Verdict.MALICIOUS
        else Category.BENIGN_ACTIVITY
    )
    entities = state["entities"]
    severity = await _severity(assessments, verdict, entities, tools)
    significant = [a for a in assessments if not a.noisy]
    techniques = sorted({t for a in significant for t in a.techniques})
    gaps = gaps_of(state.get("gaps", []))
    # first, so that the ticket's triage note (the first lines of the rationale) shows it
    rationale = [degraded_line(gaps)] if gaps else []
    rationale += [operators] if operators else []
    rationale += [truncate(f.line(), 300) for f in state.get("intel", [])[:5]]
    rationale += state.get("intel_notes", [])[:3]
    rationale += [
        f"score {score:.1f} (malicious at {MALICIOUS_AT:g}); corroboration {corroboration:+.1f}",
        f"{len(assessments)} alerts, {len(significant)} not known to be noisy",
    ]
    if verdict is Verdict.MALICIOUS:
        weights = category_weights(assessments, stages)
        # ties in the order the category is chosen in: the same line on every run (the weights'
        # order comes from sets of tactics, whose order varies between processes)
        order = {c: n for n, c in enumerate(CATEGORY_PRIORITY)}
        ranked = sorted(weights.items(), key=lambda kv: (-kv[1], order.get(kv[0], len(order))))
        ranked = ranked[:4]
        rationale.append(
            f"category {category.value}: " + ", ".join(f"{c.value} {w:g}" for c, w in ranked)
        )
    lines, claims = rationale_claims(
        state["input"].alerts,
        state["environment"],
        sorted(assessments, key=lambda a: -a.score)[:TOP_RULES],
        state.get("corroboration", []),
        state.get("claim_refs", {}),
    )
    rationale += lines
    return TriageResult(
        verdict=verdict,
        confidence=confidence_for(score),
        severity=severity,
        category=category,
        techniques=techniques[:50],
        entities=entities,
        rationale=rationale,
        degraded=bool(gaps),
        evidence_gaps=gaps,
        knowledge_version=KNOWLEDGE_VERSION,
        claims=claims,
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
