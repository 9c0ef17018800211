"""The chaos run's figures (`bench/chaos_figures.py`) over hand-made ledgers: a vendor change is a
duplicate exactly when no effective execution in the store's ledger is left to back it, tickets
and comments are counted twice when the vendor holds them twice, and a kill's recovery is read
from the first progress after the killed process answers again."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bench.chaos_figures import (
    VendorChange,
    attribute,
    comment_figures,
    executions,
    falcon_device_id,
    recovery,
    ticket_opens,
)
from orchestrator.store.records import ActionRecord, ActionStatus
from tools.actions import Action, BlockIp, DisableAccount, IsolateHost, business_key
from tools.models import Asset, AssetKind, Criticality, Environment

T0 = datetime(2026, 1, 1, tzinfo=UTC)
INVENTORY = Environment(
    assets=[
        Asset(
            id="PRD01",
            hostname="PRD01.pandalab.com",
            kind=AssetKind.SERVER,
            criticality=Criticality.HIGH,
        )
    ]
)
DEVICE = falcon_device_id("PRD01", INVENTORY)


def _at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def _record(
    incident: str,
    action: Action,
    seconds: float,
    *,
    status: ActionStatus = ActionStatus.SUCCEEDED,
    already: bool = False,
) -> ActionRecord:
    return ActionRecord(
        business_key=business_key(incident, action),
        incident_id=incident,
        action=action,
        risk=50,
        decision="allow",
        status=status,
        already_in_state=already,
        inverse=action.inverse() if status is ActionStatus.ROLLED_BACK else None,
        created_at=_at(seconds),
    )


def _change(vendor: str, op: str, target: str, seconds: float, body: str = "") -> VendorChange:
    return VendorChange(vendor, op, target, _at(seconds), body)


def test_a_containment_applied_twice_is_one_duplicate() -> None:
    done = executions({"a": [_record("a", IsolateHost(target="PRD01"), 1)]}, INVENTORY)
    changes = [
        _change("crowdstrike", "contain", DEVICE, 2),
        _change("crowdstrike", "lift_containment", DEVICE, 3),
        _change("crowdstrike", "contain", DEVICE, 4),
    ]
    result = attribute(changes, done)
    assert [(c.op, c.at) for c in result.duplicates] == [
        ("lift_containment", _at(3)),
        ("contain", _at(4)),
    ]
    assert [(c.op, c.target) for c in result.journals["a"]] == [("isolate_host", "PRD01")]


def test_each_incidents_own_change_and_a_rollback_are_no_duplicates() -> None:
    ledger = {
        "a": [_record("a", IsolateHost(target="prd01"), 1, status=ActionStatus.ROLLED_BACK)],
        "b": [
            _record("b", IsolateHost(target="PRD01"), 5),
            _record("b", DisableAccount(target="pandalab\\pedro.gustavo"), 6),
        ],
        "c": [_record("c", IsolateHost(target="PRD01"), 7, already=True)],  # found contained
    }
    changes = [
        _change("crowdstrike", "contain", DEVICE, 2),
        _change("crowdstrike", "lift_containment", DEVICE, 3),
        _change("crowdstrike", "contain", DEVICE, 5.5),
        _change("okta", "suspend", "pedro.gustavo@pandalab.com", 6.5),
    ]
    result = attribute(changes, executions(ledger, INVENTORY))
    assert result.duplicates == []
    assert [c.op for c in result.journals["a"]] == ["isolate_host", "release_host"]
    assert [c.op for c in result.journals["b"]] == ["isolate_host", "disable_account"]
    assert "c" not in result.journals


def test_a_firewall_change_is_matched_by_its_address_object_only() -> None:
    done = executions({"a": [_record("a", BlockIp(target="10.0.5.1"), 1)]}, INVENTORY)
    vsys = "/config/devices/entry/vsys/entry[@name='vsys1']"
    body = 'type=config&action=set&element=<address><entry name="garrison-10.0.5.13">'
    other = attribute([_change("panos", "set", vsys, 2, body)], done)
    assert len(other.duplicates) == 1  # 10.0.5.13 is not 10.0.5.1
    own = body.replace("10.0.5.13", "10.0.5.1")
    assert attribute([_change("panos", "set", vsys, 2, own)], done).duplicates == []


def test_a_second_ticket_and_a_comment_posted_twice_are_counted() -> None:
    changes = [
        _change("jira", "create_issue", "garrison-inc%2F1", 1),
        _change("jira", "create_issue", "garrison-inc%2F1", 2),
        _change("jira", "create_issue", "garrison-inc2", 3),
        _change("jira", "add_comment", "SEC-1#abc", 4),
        _change("jira", "add_comment", "SEC-1#abc", 5),
    ]
    opens = ticket_opens(changes)
    assert {incident: len(c) for incident, c in opens.items()} == {"inc/1": 2, "inc2": 1}
    comments = {
        "SEC-1": ["triage\n[garrison:inc/1:1]", "triage\n[garrison:inc/1:1]", "closed"],
        "SEC-2": ["triage\n[garrison:inc2:1]", "[garrison:inc2:10]"],
    }
    figures = comment_figures(changes, comments)
    assert figures["duplicate_markers"] == 1
    assert figures["duplicate_bodies"] == 1
    assert figures["duplicate_texts"] == 1
    assert figures["duplicates"] == 1
    assert figures["unmarked"] == 1


def test_recovery_is_measured_from_the_kill_to_progress_after_the_process_is_back() -> None:
    kills = [
        {"kind": "worker", "at": 10.0, "back_at": 12.0},
        {"kind": "pg_sessions", "at": 20.0, "back_at": 20.0},
        {"kind": "temporal", "at": 30.0, "back_at": None},
    ]
    shown = recovery(kills, [11.0, 13.5, 21.0])
    assert [(k["back_s"], k["recovery_s"]) for k in shown] == [(2.0, 3.5), (0.0, 1.0), (None, None)]
