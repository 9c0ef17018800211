"""What the console's pages are made of, without a server: the timeline's order and kinds, the
countdown, the Temporal Web UI link, the filters of the incidents list."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from orchestrator.console.evidence_pages import claim_lines
from orchestrator.console.views import (
    ListFilters,
    audit_kind,
    countdown,
    temporal_link,
    timeline,
)
from orchestrator.store.records import AuditRecord
from tests.orchestrator.console.seed import make_alert
from tools.models import Severity

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def entry(seq: int, kind: str, minutes: int) -> AuditRecord:
    return AuditRecord(
        seq=seq,
        at=T0 + timedelta(minutes=minutes),
        prev_hash="p",
        hash="h",
        type=kind,
        actor="garrison-worker",
        outcome="ok",
        source="test",
    )


def test_the_timeline_puts_alerts_and_audit_in_time_order_each_with_its_kind() -> None:
    alert = make_alert("a1").model_copy(update={"time": T0 + timedelta(minutes=1)})
    audit = [
        entry(1, "agent.triage", 2),
        entry(2, "approval.requested", 3),
        entry(3, "response.execute", 5),
        entry(4, "response.rollback", 6),
        entry(5, "ticket.opened", 0),
        entry(6, "incident.closed", 7),
    ]
    shown = timeline([alert], audit)
    assert [e.kind for e in shown] == [
        "ticket",
        "alert",
        "agent",
        "approval",
        "action",
        "rollback",
        "other",
    ]
    assert audit_kind("policy.deny") == "action"


def test_countdown_words() -> None:
    now = T0
    assert countdown(now + timedelta(minutes=14, seconds=5), now) == "14m 05s"
    assert countdown(now + timedelta(hours=2, seconds=61), now) == "2h 01m 01s"
    assert countdown(now - timedelta(seconds=1), now) == "past its deadline"


def test_the_temporal_link_quotes_the_workflow_id() -> None:
    assert temporal_link(None, "default", "x") is None
    assert (
        temporal_link("http://ui:8233/", "prod ns", "live--a?b#c")
        == "http://ui:8233/namespaces/prod%20ns/workflows/incident-live--a%3Fb%23c"
    )


def test_filters_ignore_unknown_values_and_turn_age_into_a_time() -> None:
    parsed = ListFilters.parse({"severity": "high", "verdict": "evil", "age": "24h", "x": "y"})
    assert parsed.severity is Severity.HIGH and parsed.verdict is None
    assert parsed.selected() == {
        "status": "",
        "verdict": "",
        "severity": "high",
        "category": "",
        "age": "24h",
        "assignee": "",
    }
    assert parsed.store_filter(T0).opened_after == T0 - timedelta(days=1)
    assert ListFilters.parse({"age": "1000y"}).store_filter(T0).opened_after is None


def test_the_assignee_filter_means_the_signed_in_analyst_nobody_or_a_known_person() -> None:
    people = ["alice", "bob"]
    mine = ListFilters.parse({"assignee": "mine"}, people).store_filter(T0, "alice")
    assert (mine.assignee, mine.unassigned) == ("alice", False)
    nobody = ListFilters.parse({"assignee": "unassigned"}, people).store_filter(T0, "alice")
    assert (nobody.assignee, nobody.unassigned) == (None, True)
    bob = ListFilters.parse({"assignee": "bob"}, people)
    assert bob.selected()["assignee"] == "bob" and bob.store_filter(T0).assignee == "bob"
    stranger = ListFilters.parse({"assignee": "mallory"}, people).store_filter(T0, "alice")
    assert (stranger.assignee, stranger.unassigned) == (None, False)


def test_a_rationale_line_links_to_the_alerts_row_and_the_records_of_its_claim() -> None:
    alerts = [make_alert("a-1"), make_alert("a:2"), make_alert("a-1")]
    lines = [
        "score 9.0 (malicious at 6); corroboration +2.0",
        "alert a-1: 4 pts; LSASS access",
        "alert a:2: 3 pts; rule weight",
        "alert a-9: 2 pts; not one of this incident's alerts",
        "process 4242 on WS-7 read lsass: alert a-1 is right",
    ]
    ref = {"host": "ws-7&x", "time": "2026-12-01T09:00:00+00:00", "source": "process", "pid": 4242}
    claims = [{"text": lines[4], "refs": [ref]}, {"text": "malformed", "refs": [{"host": 1}]}]
    triage = entry(1, "agent.triage", 0).model_copy(
        update={"detail": {"rationale": "\n".join(lines), "claims": json.dumps(claims)}}
    )
    shown = claim_lines([triage], alerts, "inc 1", "agent.triage", "rationale")
    assert [(c.text, c.anchor) for c in shown] == [
        (lines[0], None),
        (lines[1], "alert-1"),  # the first row of a uid seen twice
        (lines[2], "alert-2"),
        (lines[3], None),
        (lines[4], None),
    ]
    assert [c.links for c in shown[:4]] == [(), (), (), ()]
    (link,) = shown[4].links
    assert link.label == "process on ws-7&x at 09:00:00 pid 4242"
    assert link.url == (
        "/console/incidents/inc%201/events?host=ws-7%26x&at=2026-12-01T09%3A00%3A00%2B00%3A00"
        "&pid=4242#rests-on"
    )
