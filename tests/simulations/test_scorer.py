"""The scorer and the spec's target matching, on hand-built runs with known answers."""

from __future__ import annotations

import json

import pytest

from simulations.matching import TARGET_KINDS, action_in, same_target
from simulations.scorer import (
    DeniedAction,
    ExecutedAction,
    IncidentRun,
    Scorecard,
    TimeToContainSplit,
    percentile,
    score,
    scorecard_rows,
)
from simulations.spec import ExpectedAction, Truth
from tools.actions import ActionKind, parse_action
from tools.models import Category, Verdict

K = ActionKind
MAL, BEN = Verdict.MALICIOUS, Verdict.BENIGN


# ---- target matching ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "a", "b", "same"),
    [
        (K.ISOLATE_HOST, "PRD01.pandalab.com", "PRD01", True),
        (K.ISOLATE_HOST, "prd01", "PRD01", True),
        (K.ISOLATE_HOST, " PRD01 ", "prd01.PANDALAB.com", True),
        (K.ISOLATE_HOST, "PRD01", "PRD02", False),
        (K.ISOLATE_HOST, "PRD01", "PRD011", False),
        (K.KILL_PROCESS, "PRD01.pandalab.com:4242", "prd01:4242", True),
        (K.KILL_PROCESS, "PRD01:4242", "PRD01:4243", False),
        (K.KILL_PROCESS, "PRD01:4242", "PRD02:4242", False),
        (
            K.QUARANTINE_FILE,
            "PRD01:C:\\Windows\\lsass.dmp",
            "prd01.pandalab.com:c:\\windows\\LSASS.DMP",
            True,
        ),
        (K.QUARANTINE_FILE, "PRD01:ABCDEF", "PRD01:abcdef", True),
        (K.REMOVE_PERSISTENCE, "PRD01:HKLM\\Run\\evil", "prd01.lab:hklm\\run\\evil", True),
        (K.REMOVE_PERSISTENCE, "PRD01:HKLM\\Run\\evil", "PRD01:HKLM\\Run\\good", False),
        (K.DISABLE_ACCOUNT, "pandalab\\pedro.gustavo", "pedro.gustavo", True),
        (K.DISABLE_ACCOUNT, "PANDALAB\\Pedro.Gustavo", "pandalab\\pedro.gustavo", True),
        (K.DISABLE_ACCOUNT, "pandalab.com\\pedro", "PANDALAB\\pedro", True),
        (K.DISABLE_ACCOUNT, "otherdom\\pedro", "pandalab\\pedro", False),
        (K.DISABLE_ACCOUNT, "pandalab\\pedro", "pandalab\\pedro.gustavo", False),
        (K.RESET_CREDENTIALS, "pedro@pandalab.com", "pedro", False),
        (K.BLOCK_IP, "10.0.5.13", "10.0.5.13", True),
        (K.BLOCK_IP, "10.0.5.13", "10.0.5.13/32", True),
        (K.BLOCK_IP, "10.0.5.13", "10.0.5.14", False),
        (K.BLOCK_IP, "2001:db8::1", "2001:0DB8:0000:0000:0000:0000:0000:0001", True),
        (K.BLOCK_IP, "2001:DB8::1/128", "2001:db8::1", True),
        (K.BLOCK_IP, "::ffff:10.0.5.13", "10.0.5.13", True),
        (K.BLOCK_IP, "10.0.5.0/24", "10.0.5.7/24", True),
        (K.BLOCK_IP, "10.0.5.0/24", "10.0.5.13", False),
        (K.BLOCK_IP, "10.0.5.0/24", "10.0.5.0/25", False),
        (K.BLOCK_IP, "2001:db8::/48", "2001:db8:0::/48", True),
        (K.BLOCK_IP, "not-an-ip", "NOT-AN-IP", True),
        (K.BLOCK_DOMAIN, "Evil.Example.", "evil.example", True),
        (K.BLOCK_DOMAIN, "cdn.evil.example", "evil.example", False),
    ],
)
def test_same_target_follows_the_spec(kind: ActionKind, a: str, b: str, same: bool) -> None:
    assert same_target(kind, a, b) is same
    assert same_target(kind, b, a) is same


def test_target_kinds_agree_with_the_action_classes() -> None:
    patch = {"cve": "CVE-2021-44228", "remediation": "mitigation:log4j-nolookups"}
    for kind in ActionKind:
        params = patch if kind in (ActionKind.PATCH, ActionKind.UNPATCH) else {}
        assert TARGET_KINDS[kind] is parse_action(kind.value, "PRD01:1", **params).target_kind


def test_action_in_needs_the_same_kind() -> None:
    wanted = [ExpectedAction(kind=K.ISOLATE_HOST, target="PRD01")]
    assert action_in(K.ISOLATE_HOST, "prd01.pandalab.com", wanted)
    assert not action_in(K.REMOVE_PERSISTENCE, "PRD01", wanted)
    assert not action_in(K.ISOLATE_HOST, "PRD02", wanted)
    assert not action_in(K.ISOLATE_HOST, "PRD01", [])


# ---- builders -------------------------------------------------------------------------------


def ex(
    kind: ActionKind,
    target: str,
    at: float = 0.0,
    *,
    risk: int = 10,
    approved_by: tuple[str, ...] = (),
    protected: bool = False,
    approval_required: bool = False,
    waited: float = 0.0,
    executing: float = 0.0,
) -> ExecutedAction:
    """`waited` and `executing`: the incident's cumulative approval wait and execution time."""
    return ExecutedAction(
        kind=kind,
        target=target,
        risk=risk,
        approved_by=list(approved_by),
        approval_required=approval_required,
        protected=protected,
        executed_at_s=at,
        approval_wait_s=waited,
        execution_s=executing,
    )


def truth(
    verdict: Verdict = MAL,
    expected: tuple[tuple[ActionKind, str], ...] = (),
    acceptable: tuple[tuple[ActionKind, str], ...] = (),
) -> Truth:
    return Truth(
        verdict=verdict,
        category=Category.CREDENTIAL_ACCESS if verdict is MAL else Category.BENIGN_ACTIVITY,
        expected_actions=[ExpectedAction(kind=k, target=t) for k, t in expected],
        acceptable_actions=[ExpectedAction(kind=k, target=t) for k, t in acceptable],
    )


def run(
    id: str, *executed: ExecutedAction, verdict: Verdict | None = MAL, approvals: int = 0
) -> IncidentRun:
    return IncidentRun(
        id=id,
        verdict=verdict,
        executed_actions=list(executed),
        denied_actions=[],
        approvals_requested=approvals,
        elapsed_s=1.0,
    )


# ---- the whole scorecard --------------------------------------------------------------------


def _three_incidents() -> tuple[list[IncidentRun], dict[str, Truth]]:
    truths = {
        "inc-a": truth(
            expected=(
                (K.ISOLATE_HOST, "PRD01"),
                (K.DISABLE_ACCOUNT, "pandalab\\pedro"),
                (K.BLOCK_IP, "10.0.5.13"),
            ),
            acceptable=((K.RESET_CREDENTIALS, "pandalab\\pedro"),),
        ),
        "inc-b": truth(expected=((K.ISOLATE_HOST, "WS2"), (K.ISOLATE_HOST, "WS3"))),
        "inc-c": truth(BEN),
    }
    inc_a = run(
        "inc-a",
        ex(K.BLOCK_IP, "8.8.8.8", 10),
        ex(K.BLOCK_IP, "10.0.5.13/32", 60),
        ex(K.ISOLATE_HOST, "PRD01.pandalab.com", 120, risk=40),
        ex(K.DISABLE_ACCOUNT, "pedro", 240, risk=60, approved_by=("u1",)),
        ex(K.RESET_CREDENTIALS, "PANDALAB\\pedro", 250),
        approvals=1,
    )
    inc_a = inc_a.model_copy(
        update={
            "denied_actions": [
                DeniedAction(kind=K.BLOCK_IP, target="0.0.0.0/0", risk=100, reason="policy: wide")
            ]
        }
    )
    inc_b = run("inc-b", ex(K.ISOLATE_HOST, "WS2", 300), ex(K.ISOLATE_HOST, "ws2", 500))
    inc_c = run(
        "inc-c",
        ex(K.BLOCK_DOMAIN, "example.com", 30, risk=70),
        ex(K.RELEASE_HOST, "WS9", 40, risk=90),
        approvals=2,
    )
    return [inc_a, inc_b, inc_c], truths


def test_scorecard_has_the_known_answers() -> None:
    runs, truths = _three_incidents()
    card = score(runs, truths, threshold=50, elapsed_s=12.3456)
    assert card.incidents == 3
    assert card.elapsed_s == 12.346
    assert card.verdict_accuracy == 0.6667  # inc-c is benign, the run said malicious
    assert card.containment_precision == 0.75  # 6 of 8 scored actions wanted
    assert card.containment_recall == 0.8  # 4 of 5 distinct expected actions
    assert card.over_response == 2  # 8.8.8.8 and anything on the benign incident
    assert card.unapproved_risky_actions == 1  # example.com at risk 70
    assert card.approvals_requested == 3
    assert (card.time_to_contain_s.median, card.time_to_contain_s.p90) == (240.0, 240.0)
    assert card.incidents_per_s == round(3 / 12.3456, 3)

    a, b, c = card.per_incident
    assert (a.time_to_contain_s, b.time_to_contain_s, c.time_to_contain_s) == (240.0, None, None)
    assert [(m.kind, m.target) for m in b.missed_actions] == [(K.ISOLATE_HOST, "WS3")]
    assert [(u.kind, u.target) for u in a.unexpected_actions] == [(K.BLOCK_IP, "8.8.8.8")]
    assert [(u.kind, u.target) for u in c.unexpected_actions] == [(K.BLOCK_DOMAIN, "example.com")]
    assert len(c.executed_actions) == 2  # the rollback's release is listed, never scored
    assert (a.approvals_requested, c.approvals_requested) == (1, 2)


def test_scorecard_serialises_to_the_report_schema() -> None:
    runs, truths = _three_incidents()
    card = score(runs, truths, threshold=50, elapsed_s=12.3)
    report = json.loads(card.model_dump_json())
    assert report == card.model_dump(mode="json", by_alias=True)
    assert report["schema"] == "garrison.scorecard/1"
    assert set(report) >= {
        "schema",
        "incidents",
        "elapsed_s",
        "verdict_accuracy",
        "containment_precision",
        "containment_recall",
        "over_response",
        "unapproved_risky_actions",
        "approvals_requested",
        "time_to_contain_s",
        "per_incident",
    }
    assert report["time_to_contain_s"] == {"median": 240.0, "p90": 240.0}
    first, second, _ = report["per_incident"]
    assert set(first) >= {
        "id",
        "verdict",
        "expected_verdict",
        "executed_actions",
        "denied_actions",
        "approvals_requested",
        "time_to_contain_s",
    }
    assert (first["id"], first["verdict"], first["expected_verdict"]) == (
        "inc-a",
        "malicious",
        "malicious",
    )
    assert first["executed_actions"][3] == {
        "kind": "disable_account",
        "target": "pedro",
        "risk": 60,
        "approved_by": ["u1"],
        "executed_at_s": 240.0,
        "approval_wait_s": 0.0,
        "execution_s": 0.0,
    }
    assert first["time_to_contain_split"] == {
        "agent_s": 240.0,
        "approval_wait_s": 0.0,
        "execution_s": 0.0,
    }
    assert report["time_to_contain_split"] == {
        "median": {"agent_s": 240.0, "approval_wait_s": 0.0, "execution_s": 0.0}
    }
    assert first["denied_actions"] == [
        {"kind": "block_ip", "target": "0.0.0.0/0", "risk": 100, "reason": "policy: wide"}
    ]
    assert second["time_to_contain_s"] is None
    assert second["time_to_contain_split"] is None
    assert isinstance(report["over_response"], int)
    assert isinstance(report["containment_recall"], float)


# ---- single metrics -------------------------------------------------------------------------


def test_nothing_executed_and_nothing_expected_is_perfect_containment() -> None:
    card = score([run("quiet", verdict=BEN)], {"quiet": truth(BEN)}, 50, 1.0)
    assert (card.containment_precision, card.containment_recall) == (1.0, 1.0)
    assert (card.over_response, card.verdict_accuracy) == (0, 1.0)
    assert (card.time_to_contain_s.median, card.time_to_contain_s.p90) == (None, None)


def test_no_incidents_is_an_empty_scorecard() -> None:
    card = score([], {}, 50, 0.0)
    assert (card.incidents, card.incidents_per_s, card.per_incident) == (0, 0.0, [])


def test_benign_incident_counts_every_action_as_over_response() -> None:
    # Even an action the truth calls acceptable: on a benign incident nothing is wanted.
    benign = truth(BEN, acceptable=((K.BLOCK_IP, "203.0.113.7"),))
    runs = [run("b", ex(K.BLOCK_IP, "203.0.113.7"), ex(K.ISOLATE_HOST, "PRD01"), verdict=BEN)]
    card = score(runs, {"b": benign}, 50, 1.0)
    assert (card.over_response, card.containment_precision) == (2, 0.0)
    assert card.containment_recall == 1.0


def test_acceptable_actions_count_for_precision_not_recall() -> None:
    t = truth(expected=((K.ISOLATE_HOST, "PRD01"),), acceptable=((K.REVOKE_SESSIONS, "bob"),))
    card = score([run("i", ex(K.REVOKE_SESSIONS, "corp\\bob"))], {"i": t}, 50, 1.0)
    assert (card.containment_precision, card.containment_recall, card.over_response) == (
        1.0,
        0.0,
        0,
    )


def test_recall_counts_an_expected_action_once_even_if_executed_twice() -> None:
    t = truth(
        expected=(
            (K.ISOLATE_HOST, "PRD01"),
            (K.ISOLATE_HOST, "PRD01.pandalab.com"),  # the same action, spelled twice
            (K.BLOCK_IP, "10.0.5.13"),
        )
    )
    runs = [run("i", ex(K.ISOLATE_HOST, "PRD01", 10), ex(K.ISOLATE_HOST, "prd01", 20))]
    card = score(runs, {"i": t}, 50, 1.0)
    assert card.containment_recall == 0.5  # 1 of 2 distinct expected actions
    assert card.containment_precision == 1.0  # both executions were wanted
    assert len(card.per_incident[0].expected_actions) == 2


@pytest.mark.parametrize(
    ("action", "unapproved"),
    [
        (ex(K.ISOLATE_HOST, "PRD01", risk=50), 0),
        (ex(K.ISOLATE_HOST, "PRD01", risk=51), 1),
        (ex(K.ISOLATE_HOST, "PRD01", risk=51, approved_by=("u1",)), 0),
        (ex(K.ISOLATE_HOST, "PRD01", risk=10, protected=True), 1),
        (ex(K.ISOLATE_HOST, "PRD01", risk=10, protected=True, approved_by=("u1",)), 0),
        (ex(K.ISOLATE_HOST, "PRD01", risk=10, approval_required=True), 1),
        (ex(K.ISOLATE_HOST, "PRD01", risk=95, approved_by=("u1", "u2")), 0),
        (ex(K.RELEASE_HOST, "PRD01", risk=95), 0),  # a rollback's inverse is not scored
    ],
)
def test_unapproved_risky_actions(action: ExecutedAction, unapproved: int) -> None:
    card = score([run("i", action)], {"i": truth()}, 50, 1.0)
    assert card.unapproved_risky_actions == unapproved
    assert card.per_incident[0].unapproved_risky_actions == unapproved


def test_unapproved_risky_actions_follow_the_threshold() -> None:
    card = score([run("i", ex(K.ISOLATE_HOST, "PRD01", risk=60))], {"i": truth()}, 70, 1.0)
    assert card.unapproved_risky_actions == 0


def test_verdict_accuracy_counts_a_failed_run_as_wrong() -> None:
    runs = [run("a", verdict=MAL), run("b", verdict=None), run("c", verdict=BEN), run("d")]
    truths = {"a": truth(), "b": truth(), "c": truth(BEN), "d": truth(BEN)}
    assert score(runs, truths, 50, 1.0).verdict_accuracy == 0.5


def test_time_to_contain_is_the_first_execution_of_the_last_expected_action() -> None:
    t = truth(expected=((K.ISOLATE_HOST, "PRD01"), (K.BLOCK_IP, "10.0.5.13")))
    runs = [
        run(
            "i",
            ex(K.ISOLATE_HOST, "PRD01", 50),
            ex(K.BLOCK_IP, "10.0.5.13", 100),
            ex(K.ISOLATE_HOST, "PRD01", 400),  # a repeat does not move containment
            ex(K.BLOCK_DOMAIN, "later.example", 900),  # neither does an unexpected action
        )
    ]
    assert score(runs, {"i": t}, 50, 1.0).per_incident[0].time_to_contain_s == 100.0


def test_time_to_contain_median_and_p90_over_incidents_with_a_value() -> None:
    truths = {f"i{n}": truth(expected=((K.ISOLATE_HOST, "PRD01"),)) for n in range(5)}
    runs = [
        run(f"i{n}", ex(K.ISOLATE_HOST, "PRD01", at))
        for n, at in enumerate([1000.0, 100.0, 300.0, 200.0, 400.0])
    ]
    truths["missed"] = truth(expected=((K.ISOLATE_HOST, "PRD01"), (K.ISOLATE_HOST, "PRD02")))
    runs.append(run("missed", ex(K.ISOLATE_HOST, "PRD01", 5.0)))
    truths["benign"] = truth(BEN)
    runs.append(run("benign", verdict=BEN))
    card = score(runs, truths, 50, 1.0)
    assert card.time_to_contain_s.median == 300.0
    assert card.time_to_contain_s.p90 == 760.0  # 400 + 0.6 * (1000 - 400)


# ---- time to contain, split ------------------------------------------------------------------


def split(agent: float, wait: float, execution: float) -> TimeToContainSplit:
    return TimeToContainSplit(agent_s=agent, approval_wait_s=wait, execution_s=execution)


def test_time_to_contain_splits_at_the_first_execution_of_the_last_expected_action() -> None:
    t = truth(expected=((K.ISOLATE_HOST, "PRD01"), (K.BLOCK_IP, "10.0.5.13")))
    runs = [
        run(
            "i",
            ex(K.ISOLATE_HOST, "PRD01", 50, executing=0.5),
            # 600 s for the analyst's answer, then 0.75 s to block: the containing action.
            ex(K.BLOCK_IP, "10.0.5.13", 700, approved_by=("u1",), waited=600, executing=1.25),
            ex(K.BLOCK_IP, "10.0.5.13", 1500, approved_by=("u1",), waited=1200, executing=2),
            ex(K.BLOCK_DOMAIN, "later.example", 1900, waited=1500, executing=3),
        )
    ]
    row = score(runs, {"i": t}, 50, 1.0).per_incident[0]
    assert row.time_to_contain_s == 700.0
    assert row.time_to_contain_split == split(98.75, 600.0, 1.25)


def test_approval_free_containment_has_no_wait() -> None:
    t = truth(expected=((K.ISOLATE_HOST, "PRD01"),))
    runs = [run("i", ex(K.ISOLATE_HOST, "PRD01", 30.25, executing=0.5))]
    card = score(runs, {"i": t}, 50, 1.0)
    assert card.per_incident[0].time_to_contain_split == split(29.75, 0.0, 0.5)
    assert card.time_to_contain_split.median == split(29.75, 0.0, 0.5)


def test_an_incident_not_contained_has_no_split() -> None:
    truths = {
        "missed": truth(expected=((K.ISOLATE_HOST, "PRD01"), (K.ISOLATE_HOST, "PRD02"))),
        "benign": truth(BEN),
        "failed": truth(expected=((K.ISOLATE_HOST, "PRD01"),)),
    }
    runs = [
        run("missed", ex(K.ISOLATE_HOST, "PRD01", 900, waited=600, executing=1)),
        run("benign", ex(K.ISOLATE_HOST, "PRD01", 60), verdict=BEN),
        run("failed", verdict=None),
    ]
    card = score(runs, truths, 50, 1.0)
    assert [r.time_to_contain_split for r in card.per_incident] == [None, None, None]
    assert card.time_to_contain_split.median is None
    report = card.model_dump(mode="json", by_alias=True)
    assert report["time_to_contain_split"] == {"median": None}


def test_agent_time_is_never_negative() -> None:
    # Inconsistent totals (more wait than elapsed) clamp agent time at 0, they do not go below.
    t = truth(expected=((K.ISOLATE_HOST, "PRD01"),))
    runs = [run("i", ex(K.ISOLATE_HOST, "PRD01", 100, waited=99.5, executing=1))]
    assert score(runs, {"i": t}, 50, 1.0).per_incident[0].time_to_contain_split == split(
        0.0, 99.5, 1.0
    )


def test_a_tie_splits_at_the_action_recorded_later() -> None:
    # Two expected actions in one workflow task: the second's totals include the first's.
    t = truth(expected=((K.ISOLATE_HOST, "PRD01"), (K.BLOCK_IP, "10.0.5.13")))
    runs = [
        run(
            "i",
            ex(K.BLOCK_IP, "10.0.5.13", 80, waited=60, executing=2),
            ex(K.ISOLATE_HOST, "PRD01", 80, waited=60, executing=1),
        )
    ]
    assert score(runs, {"i": t}, 50, 1.0).per_incident[0].time_to_contain_split == split(
        18.0, 60.0, 2.0
    )


def test_split_medians_are_per_part_over_contained_incidents() -> None:
    t = truth(expected=((K.ISOLATE_HOST, "PRD01"),))
    parts = [(100.0, 0.0, 1.0), (400.0, 300.0, 3.0), (700.0, 600.0, 2.0), (10.0, 0.0, 0.5)]
    runs = [
        run(f"i{n}", ex(K.ISOLATE_HOST, "PRD01", at, waited=wait, executing=execution))
        for n, (at, wait, execution) in enumerate(parts)
    ]
    truths = {f"i{n}": t for n in range(len(parts))}
    truths["open"] = truth(expected=((K.ISOLATE_HOST, "PRD09"),))
    runs.append(run("open", ex(K.ISOLATE_HOST, "PRD01", 5000, waited=4000, executing=9)))
    card = score(runs, truths, 50, 1.0)
    # agent: 99, 97, 98, 9.5 -> 97.5; wait: 0, 300, 600, 0 -> 150; execution: 1, 3, 2, .5 -> 1.5
    assert card.time_to_contain_split.median == split(97.5, 150.0, 1.5)
    assert card.time_to_contain_s.median == 250.0


def test_a_report_without_the_split_still_loads() -> None:
    # Reports written before the split (same schema) lack its fields: they are optional.
    report = score(*_three_incidents(), threshold=50, elapsed_s=1.0).model_dump(
        mode="json", by_alias=True
    )
    del report["time_to_contain_split"]
    for row in report["per_incident"]:
        del row["time_to_contain_split"]
        for action in row["executed_actions"]:
            for key in ("executed_at_s", "approval_wait_s", "execution_s"):
                del action[key]
    old = Scorecard.model_validate(report)
    assert old.schema_ == "garrison.scorecard/1"
    assert old.time_to_contain_split.median is None
    assert old.per_incident[0].time_to_contain_split is None
    assert old.per_incident[0].executed_actions[0].approval_wait_s is None


@pytest.mark.parametrize(
    ("values", "q", "expected"),
    [([], 0.5, None), ([7.0], 0.9, 7.0), ([1.0, 2.0], 0.5, 1.5), ([3.0, 1.0, 2.0], 0.5, 2.0)],
)
def test_percentile(values: list[float], q: float, expected: float | None) -> None:
    assert percentile(values, q) == expected


def test_a_run_without_truth_or_scored_twice_is_an_error() -> None:
    with pytest.raises(ValueError, match="no truth for incidents: x"):
        score([run("x")], {}, 50, 1.0)
    with pytest.raises(ValueError, match="scored twice: y"):
        score([run("y"), run("y")], {"y": truth()}, 50, 1.0)


def test_scorecard_rows_for_the_cli() -> None:
    runs, truths = _three_incidents()
    rows = dict(scorecard_rows(score(runs, truths, 50, 12.3)))
    assert rows["incidents"] == "3"
    assert rows["containment_precision"] == "0.750"
    assert rows["unapproved_risky_actions"] == "1"
    assert rows["time_to_contain_s.median"] == "240.0"
    assert rows["time_to_contain_split.median"] == (
        "agent 240.0 s, approval wait 0.0 s, execution 0.0 s"
    )
    empty = dict(scorecard_rows(score([], {}, 50, 0.0)))
    assert empty["time_to_contain_s.p90"] == "-"
    assert empty["time_to_contain_split.median"] == "-"
