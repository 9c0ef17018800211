"""The OTRF importer groups matched events by Garrison's rule: one label, one group of its own."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from simulations.importers.otrf.alerts import Key, SigmaHit, alert_groups
from simulations.importers.otrf.events import Event
from simulations.importers.otrf.grouping import assign, group_recording, record
from simulations.importers.otrf.labels import IncidentLabel

SOURCE = "sysmon.json"
T0 = datetime(2020, 9, 22, 10, 0, tzinfo=UTC)


def event(minute: int, host: str, user: str | None = None, pid: int = 100) -> Event:
    body: Event = {
        "@timestamp": f"{T0 + timedelta(minutes=minute):%Y-%m-%dT%H:%M:%S}.000Z",
        "host": host,
        "event_source": "sysmon",
        "EventID": 1,
        "ProcessId": str(pid),
        "Image": "C:\\Windows\\System32\\cmd.exe",
    }
    if user:
        body["User"] = user
    return body


# rows 0-1: the attack on WORKSTATION5 as pgustavo; row 2: the DC's machine-account noise;
# row 3: WORKSTATION5 two hours later, past the 30-minute window
EVIDENCE: dict[Key, Event] = {
    (SOURCE, 0): event(0, "WORKSTATION5", "THESHIRE\\pgustavo", pid=10),
    (SOURCE, 1): event(5, "WORKSTATION5", None, pid=11),
    (SOURCE, 2): event(1, "MORDORDC", "THESHIRE\\MORDORDC$", pid=12),
    (SOURCE, 3): event(120, "WORKSTATION5", "THESHIRE\\pgustavo", pid=13),
}


def hit(rule: str, rows: list[int], level: str = "medium") -> SigmaHit:
    return SigmaHit(SOURCE, rule, f"rule {rule}", level, [], "author", rows)


HITS = [hit("rule-a", [0, 3]), hit("rule-b", [1], "high"), hit("rule-c", [2], "low")]


def label(incident_id: str, rules: list[str], **select: Any) -> IncidentLabel:
    return IncidentLabel.model_validate(
        {
            "id": incident_id,
            "dataset": "SDWIN-TEST",
            "title": incident_id,
            "select": {"rules": rules, **select},
            "truth": {"verdict": "benign", "category": "benign_activity"},
            "note": "test",
        }
    )


def test_machine_accounts_name_no_one_so_they_never_join_hosts() -> None:
    assert record(EVIDENCE[(SOURCE, 2)]).users == frozenset()
    assert record(EVIDENCE[(SOURCE, 0)]).users == frozenset({"THESHIRE\\pgustavo".lower()})


def test_groups_follow_host_person_and_window() -> None:
    groups = group_recording("SDWIN-TEST", EVIDENCE)
    spans = [sorted(r for _, r in groups.members(g)) for g in groups.groups]
    assert spans == [[0, 1], [2], [3]]
    wide = group_recording("SDWIN-TEST", EVIDENCE, window=timedelta(hours=3))
    assert [sorted(r for _, r in wide.members(g)) for g in wide.groups] == [[0, 1, 3], [2]]


def test_each_label_gets_its_group_and_the_others_are_listed() -> None:
    groups = group_recording("SDWIN-TEST", EVIDENCE)
    attack = label("attack", ["rule-a"], end="2020-09-22T11:00:00Z")
    result = assign([attack], HITS, EVIDENCE, groups)
    assert result.problems == []
    assert groups.members(result.groups["attack"]) == {(SOURCE, 0), (SOURCE, 1)}
    assert result.unlabelled == [
        "SDWIN-TEST: host MORDORDC, 2020-09-22 10:01:00-10:01:00Z, 1 matched events",
        "SDWIN-TEST: host WORKSTATION5, 2020-09-22 12:00:00-12:00:00Z, 1 matched events,"
        " users theshire\\pgustavo",
    ]


def test_a_label_spread_over_two_groups_is_refused_naming_both() -> None:
    groups = group_recording("SDWIN-TEST", EVIDENCE)
    result = assign([label("both-runs", ["rule-a"])], HITS, EVIDENCE, groups)
    assert result.groups == {}
    [problem] = result.problems
    assert problem.startswith("both-runs: the selection names 2 groups (host WORKSTATION5,")
    assert "12:00:00-12:00:00Z" in problem and problem.endswith("in SDWIN-TEST")


def test_background_beside_the_attack_cannot_be_its_own_incident() -> None:
    groups = group_recording("SDWIN-TEST", EVIDENCE)
    attack = label("attack", ["rule-a"], end="2020-09-22T11:00:00Z")
    noise = label("noise", ["rule-b"])
    result = assign([attack, noise], HITS, EVIDENCE, groups)
    assert list(result.groups) == ["attack"]
    assert result.problems == [
        "noise: names the group of 'attack' in SDWIN-TEST (host WORKSTATION5,"
        " 2020-09-22 10:00:00-10:05:00Z, 2 matched events, users theshire\\pgustavo);"
        " one group is one incident"
    ]


def test_a_label_matching_nothing_is_refused() -> None:
    groups = group_recording("SDWIN-TEST", EVIDENCE)
    result = assign([label("ghost", ["rule-z"])], HITS, EVIDENCE, groups)
    assert result.problems == ["ghost: the selection names no matched event in SDWIN-TEST"]


def test_the_incident_carries_every_alert_of_its_group() -> None:
    groups = group_recording("SDWIN-TEST", EVIDENCE)
    attack = label("attack", ["rule-a"], end="2020-09-22T11:00:00Z")
    members = groups.members(assign([attack], HITS, EVIDENCE, groups).groups["attack"])
    alerts = alert_groups(HITS, EVIDENCE, members, max_alerts=25)
    # rule-b was not in the selection, but its hit is in the attack's group
    assert [(a.hit.rule_id, a.keys) for a in alerts] == [
        ("rule-a", [(SOURCE, 0)]),
        ("rule-b", [(SOURCE, 1)]),
    ]


def test_past_max_alerts_the_most_severe_alerts_stay() -> None:
    members = set(EVIDENCE)
    kept = alert_groups(HITS, EVIDENCE, members, max_alerts=1)
    assert [a.hit.rule_id for a in kept] == ["rule-b"]  # high beats medium and low
    two = alert_groups(HITS, EVIDENCE, members, max_alerts=2)
    assert [a.hit.rule_id for a in two] == ["rule-a", "rule-b"]  # in time order
