"""Triage scoring: the points of each alert and of the incident, the verdict's threshold and
confidence, and the category.

Scoring, in points:
- per alert: severity weight + the heaviest technique weight + command-line tradecraft (capped
  at 6); a detection known to fire on ordinary activity, or discovery by a system or machine
  account, counts for NOISY_FACTOR of its rule part;
- per incident: the five best distinct rules, + 1 per further tactic seen in significant alerts
  (kill-chain breadth, at most 4), + telemetry signals (capped at 8, maintenance counts negative:
  `corroboration.py`);
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

from agents.knowledge import (
    CATEGORY_PRIORITY,
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
from agents.triage.discovery import saw_a_directory_query
from agents.triage.state import AlertAssessment
from tools.models import Alert, Category

MALICIOUS_AT = 6.0
SIGNIFICANT_ALERT = 2.0
TOP_RULES = 5
LSASS_EVIDENCE = re.compile(r"lsass|dump|\.dmp\b", re.I)
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


def _alert_tactics(alert: Alert, techniques: list[str]) -> list[str]:
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
    return tactics


def assess_alert(alert: Alert) -> AlertAssessment:
    techniques = sorted({a.technique.strip().upper() for a in alert.attacks if a.technique})
    tactics = _alert_tactics(alert, techniques)
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


def incident_category(
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
