"""The breakdown by category and ATT&CK tactic, on hand-built scorecards with known answers."""

from __future__ import annotations

from typing import Any

from simulations.breakdown import (
    NO_TACTIC,
    breakdown,
    group_metrics,
    incident_tactics,
    truth_tactics,
)
from simulations.scorer import ExecutedAction, IncidentRun, Scorecard, score
from simulations.spec import ExpectedAction, RecordedIncident, Truth
from tools.actions import ActionKind
from tools.models import Category, Verdict

K = ActionKind
MAL, BEN = Verdict.MALICIOUS, Verdict.BENIGN


def incident(incident_id: str, *tactics: str | None, title: str = "t") -> RecordedIncident:
    alert: dict[str, Any] = {
        "uid": f"{incident_id}-a1",
        "time": "2024-01-01T00:00:00Z",
        "title": title,
        "severity": "high",
        "product": "edr",
        "rule": {"uid": "r1", "name": "rule"},
        "attacks": [{"technique": "T1003", "tactic": t} for t in tactics],
    }
    return RecordedIncident.model_validate(
        {
            "schema": "recorded-incident/1",
            "id": incident_id,
            "title": title,
            "source": {"dataset": "d", "ref": "r", "license": "MIT", "attribution": "a"},
            "environment": {},
            "alerts": [alert],
            "truth": {"verdict": "benign", "category": "discovery"},
        }
    )


def act(kind: ActionKind, target: str, at: float = 10.0) -> ExecutedAction:
    return ExecutedAction(kind=kind, target=target, risk=10, approved_by=["a"], executed_at_s=at)


def scorecard_fixture() -> Scorecard:
    runs = [
        # credential access, right verdict, both expected actions, one extra
        IncidentRun(
            id="cred-1",
            verdict=MAL,
            executed_actions=[
                act(K.ISOLATE_HOST, "PRD01"),
                act(K.DISABLE_ACCOUNT, "lab\\pedro"),
                act(K.BLOCK_IP, "10.0.0.9"),
            ],
        ),
        # credential access, wrong verdict, nothing done
        IncidentRun(id="cred-2", verdict=BEN),
        # benign discovery, one action: over-response
        IncidentRun(id="disc-1", verdict=BEN, executed_actions=[act(K.ISOLATE_HOST, "WS5")]),
    ]
    truths = {
        "cred-1": Truth(
            verdict=MAL,
            category=Category.CREDENTIAL_ACCESS,
            expected_actions=[
                ExpectedAction(kind=K.ISOLATE_HOST, target="PRD01"),
                ExpectedAction(kind=K.DISABLE_ACCOUNT, target="lab\\pedro"),
            ],
        ),
        "cred-2": Truth(
            verdict=MAL,
            category=Category.CREDENTIAL_ACCESS,
            expected_actions=[ExpectedAction(kind=K.ISOLATE_HOST, target="IT01")],
        ),
        "disc-1": Truth(verdict=BEN, category=Category.DISCOVERY),
    }
    return score(runs, truths, threshold=50, elapsed_s=1.0)


def test_by_category_applies_the_scorer_definitions_per_group() -> None:
    card = scorecard_fixture()
    result = breakdown(card, [incident("cred-1", "credential-access"), incident("cred-2")])
    cred = result["by_category"]["credential_access"]
    assert cred == {
        "incidents": 2,
        "verdict_accuracy": 0.5,
        "containment_precision": round(2 / 3, 4),
        "containment_recall": round(2 / 3, 4),
        "over_response": 1,
        "unapproved_risky_actions": 0,
    }
    disc = result["by_category"]["discovery"]
    assert disc["incidents"] == 1
    assert disc["verdict_accuracy"] == 1.0
    assert disc["containment_precision"] == 0.0
    assert disc["containment_recall"] == 1.0  # nothing expected
    assert disc["over_response"] == 1
    assert list(result["by_category"]) == ["credential_access", "discovery"]


def test_by_tactic_counts_an_incident_under_each_of_its_tactics() -> None:
    card = scorecard_fixture()
    specs = [
        incident("cred-1", "credential-access", "Execution", "execution"),
        incident("cred-2", "credential-access"),
        incident("disc-1", None),
    ]
    tactics = breakdown(card, specs)["by_tactic"]
    assert list(tactics) == [NO_TACTIC, "credential-access", "execution"]
    assert tactics["credential-access"]["incidents"] == 2
    assert tactics["execution"]["incidents"] == 1
    assert tactics["execution"]["verdict_accuracy"] == 1.0
    assert tactics["execution"]["containment_recall"] == 1.0
    assert tactics["execution"]["over_response"] == 1
    assert tactics[NO_TACTIC]["incidents"] == 1


def test_an_incident_without_its_spec_falls_under_no_tactic() -> None:
    tactics = breakdown(scorecard_fixture(), [])["by_tactic"]
    assert list(tactics) == [NO_TACTIC]
    assert tactics[NO_TACTIC]["incidents"] == 3


def test_group_totals_agree_with_the_scorecard() -> None:
    card = scorecard_fixture()
    overall = group_metrics(card.per_incident)
    for metric in (
        "verdict_accuracy",
        "containment_precision",
        "containment_recall",
        "over_response",
        "unapproved_risky_actions",
    ):
        assert overall[metric] == getattr(card, metric)


def test_empty_group_ratios_are_one() -> None:
    assert group_metrics([]) == {
        "incidents": 0,
        "verdict_accuracy": 1.0,
        "containment_precision": 1.0,
        "containment_recall": 1.0,
        "over_response": 0,
        "unapproved_risky_actions": 0,
    }


def test_incident_tactics_are_distinct_and_normalised() -> None:
    assert incident_tactics(incident("x-1", " Discovery ", "discovery", None)) == ["discovery"]
    assert incident_tactics(incident("x-2")) == [NO_TACTIC]


def truth_incident(
    incident_id: str, techniques: list[str], *paired: tuple[str, str]
) -> RecordedIncident:
    """An incident whose truth names `techniques`; its alert pairs `paired` (technique, tactic)."""
    spec = incident(incident_id).model_dump(mode="json", by_alias=True)
    spec["truth"]["techniques"] = techniques
    spec["alerts"][0]["attacks"] = [{"technique": t, "tactic": tac} for t, tac in paired]
    return RecordedIncident.model_validate(spec)


def test_by_truth_tactic_groups_by_what_the_attack_was_not_what_the_alerts_said() -> None:
    card = scorecard_fixture()
    specs = [
        # a remote service hop whose rule tags its technique with persistence only: ATT&CK
        # (the agents' knowledge) says lateral movement
        truth_incident("cred-1", ["T1021.002"], ("T1021.002", "persistence")),
        # no alert names the truth's technique: the knowledge still gives its tactic
        truth_incident("cred-2", ["T1003.001"], ("T1059.001", "execution")),
        # a technique the knowledge lacks: the tactic the recording's alert pairs it with
        truth_incident("disc-1", ["T1123"], ("T1123", "collection")),
    ]  # fmt: skip
    result = breakdown(card, specs)
    truth = result["by_truth_tactic"]
    assert list(truth) == ["collection", "credential-access", "lateral-movement"]
    assert truth["lateral-movement"]["incidents"] == 1
    assert truth["lateral-movement"]["containment_recall"] == 1.0
    assert truth["credential-access"]["verdict_accuracy"] == 0.0
    assert truth["collection"]["incidents"] == 1
    # the alerts' own grouping still shows what the detections saw
    assert "persistence" in result["by_tactic"] and "persistence" not in truth
    assert truth_tactics(specs[0]) == ["lateral-movement"]
    assert truth_tactics(truth_incident("x-1", [])) == [NO_TACTIC]
