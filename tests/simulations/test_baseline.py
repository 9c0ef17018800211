"""Comparing a scorecard report with a saved baseline."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from simulations.baseline import check_report, compare, load_baseline
from simulations.scorer import ExecutedAction, IncidentRun, score
from simulations.spec import ExpectedAction, Truth
from tools.actions import ActionKind
from tools.models import Category, Verdict

K = ActionKind


def report() -> dict[str, Any]:
    runs = [
        IncidentRun(
            id="cred-1",
            verdict=Verdict.MALICIOUS,
            executed_actions=[
                ExecutedAction(
                    kind=K.ISOLATE_HOST, target="PRD01", risk=70, approved_by=["a"], executed_at_s=5
                )
            ],
        ),
        IncidentRun(id="disc-1", verdict=Verdict.BENIGN),
    ]
    truths = {
        "cred-1": Truth(
            verdict=Verdict.MALICIOUS,
            category=Category.CREDENTIAL_ACCESS,
            expected_actions=[ExpectedAction(kind=K.ISOLATE_HOST, target="PRD01")],
        ),
        "disc-1": Truth(verdict=Verdict.BENIGN, category=Category.DISCOVERY),
    }
    return score(runs, truths, threshold=50, elapsed_s=1.0).model_dump(mode="json", by_alias=True)


def row(data: dict[str, Any], incident: str) -> dict[str, Any]:
    return next(r for r in data["per_incident"] if r["id"] == incident)


def test_the_same_report_has_no_differences() -> None:
    assert compare(report(), report()) == []


def test_timing_and_approval_counts_are_not_differences() -> None:
    current = report()
    current["elapsed_s"] = 99.0
    current["approvals_requested"] = 7
    current["time_to_contain_s"] = {"median": 1000.0, "p90": 2000.0}
    assert compare(current, report()) == []


@pytest.mark.parametrize(
    ("metric", "value"),
    [
        ("verdict_accuracy", 0.5),
        ("containment_precision", 0.9),
        ("containment_recall", 0.0),
        ("over_response", 1),
        ("unapproved_risky_actions", 2),
    ],
)
def test_a_worse_metric_is_a_difference(metric: str, value: float) -> None:
    current = report()
    current[metric] = value
    differences = compare(current, report())
    assert len(differences) == 1
    assert differences[0].startswith(f"{metric}: ")
    assert "worse" in differences[0]


@pytest.mark.parametrize(
    ("metric", "worse", "better"),
    [("verdict_accuracy", 0.5, 1.0), ("over_response", 3, 0)],
)
def test_a_better_metric_is_not_a_difference(metric: str, worse: float, better: float) -> None:
    current, baseline = report(), report()
    baseline[metric], current[metric] = worse, better
    assert compare(current, baseline) == []


def test_a_changed_verdict_is_a_difference() -> None:
    current = report()
    row(current, "cred-1")["verdict"] = None
    assert compare(current, report()) == ["cred-1: verdict malicious -> error"]


def test_changed_executed_actions_are_differences() -> None:
    current = report()
    row(current, "cred-1")["executed_actions"] = [
        {"kind": "block_ip", "target": "10.0.0.1", "risk": 10, "approved_by": []}
    ]
    assert compare(current, report()) == [
        "cred-1: now executes block_ip 10.0.0.1",
        "cred-1: no longer executes isolate_host PRD01",
    ]


def test_the_action_order_and_repeats_do_not_matter() -> None:
    current = report()
    actions = row(current, "cred-1")["executed_actions"]
    actions.append(copy.deepcopy(actions[0]))
    assert compare(current, report()) == []


def test_missing_and_added_incidents_are_differences() -> None:
    current = report()
    current["per_incident"] = [r for r in current["per_incident"] if r["id"] != "disc-1"] + [
        {**row(current, "disc-1"), "id": "new-1"}
    ]
    assert compare(current, report()) == [
        "disc-1: in the baseline, missing from this run",
        "new-1: new in this run, not in the baseline",
    ]


@pytest.mark.parametrize(
    ("mangle", "problem"),
    [
        (lambda r: [r], "expected a JSON object"),
        (lambda r: {**r, "schema": "other/1"}, "schema is 'other/1'"),
        (lambda r: {k: v for k, v in r.items() if k != "containment_recall"}, "containment_recall"),
        (lambda r: {**r, "over_response": "0"}, "over_response"),
        (lambda r: {**r, "per_incident": {}}, "'per_incident'"),
        (lambda r: {**r, "per_incident": [{"verdict": "benign"}]}, "per_incident[0]"),
        (
            lambda r: {**r, "per_incident": [r["per_incident"][0], r["per_incident"][0]]},
            "listed twice",
        ),
        (
            lambda r: {**r, "per_incident": [{"id": "x", "executed_actions": [{"kind": 1}]}]},
            "'executed_actions'",
        ),
    ],
)
def test_a_malformed_baseline_names_the_problem(mangle: Any, problem: str) -> None:
    with pytest.raises(ValueError, match="baseline") as raised:
        compare(report(), mangle(report()))
    assert problem in str(raised.value)
    with pytest.raises(ValueError, match="current report"):
        compare(mangle(report()), report())


def test_load_baseline_reads_a_saved_report(tmp_path: Path) -> None:
    path = tmp_path / "report.json"
    path.write_text(json.dumps(report()), encoding="utf-8")
    assert load_baseline(path) == report()


def test_load_baseline_errors_name_the_file_and_the_problem(tmp_path: Path) -> None:
    missing = tmp_path / "nope.json"
    with pytest.raises(ValueError, match="no such file") as raised:
        load_baseline(missing)
    assert str(missing) in str(raised.value)
    broken = tmp_path / "broken.json"
    broken.write_text("{not json", encoding="utf-8")
    with pytest.raises(ValueError, match="not JSON"):
        load_baseline(broken)
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps({"schema": "garrison.scorecard/1"}), encoding="utf-8")
    with pytest.raises(ValueError, match="verdict_accuracy"):
        load_baseline(wrong)


def test_check_report_accepts_a_real_report() -> None:
    check_report(report())


def test_the_cli_exits_2_on_an_unreadable_baseline_before_running(tmp_path: Path) -> None:
    root = Path(__file__).parents[2]
    incident = root / "simulations" / "incidents" / "otrf-lsass-procdump-acct01"
    broken = tmp_path / "baseline.json"
    broken.write_text("{", encoding="utf-8")
    for path in (broken, tmp_path / "missing.json"):
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "orchestrator.cli",
                "simulate",
                str(incident),
                "--baseline",
                str(path),
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            cwd=root,
        )
        assert done.returncode == 2, done.stderr
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"error: baseline {path}"), done.stderr


def _emulated(data: dict[str, Any], ticket: dict[str, Any], twice: int = 0) -> dict[str, Any]:
    data = copy.deepcopy(data)
    for r in data["per_incident"]:
        r["ticket"] = dict(ticket)
        r["vendors"] = {
            "ticketing": {
                "vendor": "jira",
                "requests": 9,
                "answers": {"201": 3},
                "changes": {"create_issue": 1 + twice, "add_comment": 3},
                "repeated_changes": twice,
            }
        }
    return data


COMPLETE = {"found": True, "state": "closed", "comments": 5, "repeated_comments": 0}


def test_a_ticket_as_complete_as_the_baseline_is_no_difference() -> None:
    baseline = _emulated(report(), COMPLETE)
    assert compare(_emulated(report(), COMPLETE), baseline) == []
    # A note more (an outage recorded on the ticket) is not less complete.
    assert compare(_emulated(report(), COMPLETE | {"comments": 6}), baseline) == []


@pytest.mark.parametrize(
    ("ticket", "twice", "difference"),
    [
        (COMPLETE | {"found": False, "state": None}, 0, "cred-1: no ticket (the baseline had one)"),
        (COMPLETE | {"state": "open"}, 0, "cred-1: ticket open (the baseline's closed)"),
        (COMPLETE | {"comments": 3}, 0, "cred-1: ticket comments 5 -> 3"),
        (COMPLETE | {"repeated_comments": 2}, 0, "cred-1: 2 ticket comment(s) posted twice"),
        (COMPLETE, 1, "cred-1: ticketing applied 1 change(s) twice (the baseline 0)"),
    ],
)
def test_a_less_complete_ticket_or_a_change_twice_is_a_difference(
    ticket: dict[str, Any], twice: int, difference: str
) -> None:
    found = compare(_emulated(report(), ticket, twice), _emulated(report(), COMPLETE))
    assert any(line.startswith(difference) for line in found), found
