"""The scorecard broken down by incident category, by ATT&CK tactic of the alerts, and by ATT&CK
tactic of what the attack really was (the truth's techniques).

Pure: computed from a `Scorecard` and the recorded incidents, with the scorer's definitions
(`simulations/scorer.py`) applied to each group's incidents. An incident counts once in every
tactic its alerts name (`by_tactic`), and once in every tactic of its truth's techniques
(`by_truth_tactic`): the ATT&CK tactic the agents' knowledge gives the technique, else the tactics
the recording's alerts pair with it or its parent (an alert pairs its techniques with its rule's
tactics: a remote service hop tagged persistence is read as lateral movement only through the
knowledge). One with none falls under `NO_TACTIC`. The alerts'
tactics say what the detections saw; the truth's say which kinds of attack the response holds up
on, which is what a per-tactic recall is for.
"""

from __future__ import annotations

from collections.abc import Iterable

from agents.knowledge import technique_tactic
from simulations.scorer import IncidentScore, Scorecard
from simulations.spec import RecordedIncident
from tools.actions import SCORED_KINDS

NO_TACTIC = "(none)"
GROUP_METRICS = (
    "incidents",
    "verdict_accuracy",
    "containment_precision",
    "containment_recall",
    "over_response",
    "unapproved_risky_actions",
)


def incident_tactics(incident: RecordedIncident) -> list[str]:
    """The distinct tactics named by the incident's alerts, sorted (`NO_TACTIC` when none)."""
    found = {
        attack.tactic.strip().lower()
        for alert in incident.alerts
        for attack in alert.attacks
        if attack.tactic and attack.tactic.strip()
    }
    return sorted(found) or [NO_TACTIC]


def truth_tactics(incident: RecordedIncident) -> list[str]:
    """The distinct tactics of the truth's techniques, sorted (`NO_TACTIC` when none)."""
    found: set[str] = set()
    for technique in incident.truth.techniques:
        key = technique.strip().upper()
        known = technique_tactic(key)
        if known:
            found.add(known)
            continue
        parent = key.split(".", 1)[0]
        found |= {
            attack.tactic.strip().lower()
            for alert in incident.alerts
            for attack in alert.attacks
            if attack.tactic
            and attack.tactic.strip()
            and attack.technique.strip().upper() in (key, parent)
        }
    return sorted(found) or [NO_TACTIC]


def group_metrics(rows: list[IncidentScore]) -> dict[str, float | int]:
    """The scorer's metrics over `rows` alone (ratios over an empty set are 1.0)."""
    executed = correct = expected = hit = 0
    for row in rows:
        scored = sum(1 for action in row.executed_actions if action.kind in SCORED_KINDS)
        executed += scored
        correct += scored - len(row.unexpected_actions)
        expected += len(row.expected_actions)
        hit += len(row.expected_actions) - len(row.missed_actions)
    return {
        "incidents": len(rows),
        "verdict_accuracy": _ratio(sum(r.verdict is r.expected_verdict for r in rows), len(rows)),
        "containment_precision": _ratio(correct, executed),
        "containment_recall": _ratio(hit, expected),
        "over_response": executed - correct,
        "unapproved_risky_actions": sum(r.unapproved_risky_actions for r in rows),
    }


def breakdown(
    scorecard: Scorecard, incidents: Iterable[RecordedIncident]
) -> dict[str, dict[str, dict[str, float | int]]]:
    """`{"by_category": {category: metrics}, "by_tactic": {tactic: metrics},
    "by_truth_tactic": {tactic: metrics}}`, keys sorted.

    An incident of the scorecard missing from `incidents` falls under `NO_TACTIC`."""
    specs = list(incidents)
    tactics = {incident.id: incident_tactics(incident) for incident in specs}
    truths = {incident.id: truth_tactics(incident) for incident in specs}
    by_category: dict[str, list[IncidentScore]] = {}
    by_tactic: dict[str, list[IncidentScore]] = {}
    by_truth: dict[str, list[IncidentScore]] = {}
    for row in scorecard.per_incident:
        by_category.setdefault(row.category.value, []).append(row)
        for tactic in tactics.get(row.id, [NO_TACTIC]):
            by_tactic.setdefault(tactic, []).append(row)
        for tactic in truths.get(row.id, [NO_TACTIC]):
            by_truth.setdefault(tactic, []).append(row)
    return {
        "by_category": {key: group_metrics(by_category[key]) for key in sorted(by_category)},
        "by_tactic": {key: group_metrics(by_tactic[key]) for key in sorted(by_tactic)},
        "by_truth_tactic": {key: group_metrics(by_truth[key]) for key in sorted(by_truth)},
    }


def playbooks_by_category(scorecard: Scorecard) -> dict[str, str]:
    """Per truth category, the playbooks the routing chose for its incidents, with counts:
    `credential_access 18, lateral_movement 2`."""
    found: dict[str, dict[str, int]] = {}
    for row in scorecard.per_incident:
        counts = found.setdefault(row.category.value, {})
        name = row.playbook or "-"
        counts[name] = counts.get(name, 0) + 1
    return {
        category: ", ".join(f"{p} {n}" for p, n in sorted(counts.items(), key=lambda c: -c[1]))
        for category, counts in found.items()
    }


def _ratio(part: int, whole: int) -> float:
    return round(part / whole, 4) if whole else 1.0
