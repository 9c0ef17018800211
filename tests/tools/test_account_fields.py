"""Field meanings per event type: which accounts an event names and in which role, read from the
data table, and the account events the recorded twin serves from them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tools.account_fields import Meaning, load_meanings, meanings, mentions
from tools.accounts import RC4_HMAC, Account
from tools.edr.base import AccountEventReader
from tools.edr.memory import InMemoryEdr
from tools.event_mappers import account_event
from tools.telemetry import Telemetry

T0 = datetime(2024, 3, 4, 10, 0, tzinfo=UTC)

WINDOWS_IDS = [
    4624, 4625, 4634, 4648, 4672, 4720, 4722, 4724, 4726, 4728, 4732, 4738, 4740,
    4768, 4769, 4771, 4776, 5140, 5145,
]  # fmt: skip


def _event(number: int | None, source: str = "security", seconds: int = 0, **fields: Any):
    stamp = (T0 + timedelta(seconds=seconds)).isoformat()
    return {"@timestamp": stamp, "host": "DC1", "event_source": source, "EventID": number, **fields}


def _roles(event: dict[str, Any]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for m in mentions(event, event.get("event_source"), event.get("EventID")):
        found.setdefault(m.meaning.value, []).append(m.account.canonical)
    return found


def test_the_table_covers_the_windows_security_events_of_identity() -> None:
    table = meanings()
    assert all(table.rule("security", n) is not None for n in WINDOWS_IDS)
    assert table.rule("sysmon", 1) is not None and table.rule("sysmon", 3) is not None
    assert table.version


def test_a_service_ticket_names_its_requester_and_the_roasted_service() -> None:
    ticket = _event(
        4769, TargetUserName="mallory@CONTOSO.LOCAL", TargetDomainName="CONTOSO.LOCAL",
        ServiceName="svc_sql", TicketEncryptionType="0x17", Status="0x0",
        IpAddress="::ffff:10.20.0.7",
    )  # fmt: skip
    assert _roles(ticket) == {"actor": ["contoso\\mallory"], "service": ["contoso\\svc_sql"]}
    typed = account_event(ticket)
    assert typed is not None
    assert typed.actors == ("contoso.local\\mallory",)
    assert typed.services == ("contoso.local\\svc_sql",)
    assert (typed.encryption, typed.src_ip, typed.success) == (RC4_HMAC, "10.20.0.7", True)
    refused = account_event({**ticket, "Status": "0x1b"})
    assert refused is not None and not refused.success


def test_account_changes_name_the_admin_and_the_account_changed() -> None:
    created = _event(
        4720, SubjectUserName="admin", SubjectDomainName="CONTOSO",
        SubjectUserSid="S-1-5-21-1-2-3-500",
        TargetUserName="backdoor", TargetDomainName="CONTOSO", TargetSid="S-1-5-21-1-2-3-1200",
        SamAccountName="backdoor",
    )  # fmt: skip
    assert _roles(created) == {"actor": ["contoso\\admin"], "target": ["contoso\\backdoor"]}
    added = _event(
        4728, SubjectUserName="admin", SubjectDomainName="CONTOSO",
        MemberName="CN=backdoor,CN=Users,DC=contoso,DC=local", MemberSid="S-1-5-21-1-2-3-1200",
        TargetUserName="Domain Admins", TargetDomainName="CONTOSO",
    )  # fmt: skip
    # the group (TargetUserName) is not an account of the event; the member is
    assert _roles(added) == {"actor": ["contoso\\admin"], "target": ["contoso\\backdoor"]}


def test_a_failed_preauthentication_is_a_refused_logon() -> None:
    failed = _event(4771, TargetUserName="alice", TargetSid="S-1-5-21-1-2-3-1104", Status="0x18")
    found = mentions(failed, "security", 4771)
    assert [(m.meaning, m.account.name, m.failure) for m in found] == [
        (Meaning.LOGON, "alice", True)
    ]


def test_well_known_sids_are_kept_as_what_they_are() -> None:
    changed = _event(
        4742, SubjectUserName="ANONYMOUS LOGON", SubjectDomainName="NT AUTHORITY",
        SubjectUserSid="S-1-5-7", TargetUserName="DC1$",
    )  # fmt: skip
    assert mentions(changed, "security", 4742) == []  # 4742 is not in the table: nothing made up
    share = _event(5140, SubjectUserName="-", SubjectUserSid="S-1-5-7")
    found = mentions(share, "security", 5140)
    assert found == [] or not found[0].account.is_person


def test_sysmon_zeek_auditd_and_sshd_accounts() -> None:
    sysmon = _event(1, "sysmon", User="CONTOSO\\alice", ProcessId=5)
    assert _roles(sysmon) == {"actor": ["contoso\\alice"]}
    kerberos = {"ts": 1.0, "id.orig_h": "10.0.0.7", "request_type": "TGS",
                "client": "mallory/CONTOSO.LOCAL",
                "service": "MSSQLSvc/sql1.contoso.local:1433"}  # fmt: skip
    assert _roles(kerberos) == {"actor": ["contoso\\mallory"]}
    ntlm = {"ts": 1.0, "uid": "C1", "id.orig_h": "10.0.0.7", "username": "bob",
            "domainname": "CONTOSO"}  # fmt: skip
    assert _roles(ntlm) == {"logon": ["contoso\\bob"]}
    audit = {"type": "USER_LOGIN", "auid": "4294967295", "AUID": "unset", "acct": "deploy"}
    roles = _roles(audit)
    assert roles["logon"] == ["deploy"]
    assert not any(Account.parse(a).is_person for a in roles.get("actor", []))  # type: ignore[union-attr]
    accepted = {
        "message": "sshd[811]: Accepted password for deploy from 203.0.113.9 port 50022 ssh2"
    }
    failed = {"message": "sshd[812]: Failed password for invalid user oracle from 203.0.113.9"}
    assert [(m.account.name, m.failure) for m in mentions(accepted, None, None)] == [
        ("deploy", False)
    ]
    assert [(m.account.name, m.failure) for m in mentions(failed, None, None)] == [("oracle", True)]


def test_logons_and_processes_are_not_typed_twice() -> None:
    logon = _event(4624, TargetUserName="alice", TargetDomainName="CONTOSO", LogonType=3)
    assert account_event(logon) is None
    assert account_event(_event(1, "sysmon", User="CONTOSO\\alice")) is None


async def test_the_recorded_twin_serves_account_events_by_host_and_window() -> None:
    events = [
        _event(4769, seconds=0, TargetUserName="mallory@CONTOSO.LOCAL", ServiceName="svc_sql",
               TicketEncryptionType="0x17"),
        # the winlogbeat shape: fields nested under event_data
        {"@timestamp": (T0 + timedelta(seconds=5)).isoformat(), "host": "DC1",
         "event_source": "security", "EventID": 4769,
         "event_data": {"TargetUserName": "mallory@CONTOSO.LOCAL", "ServiceName": "svc_backup",
                        "TicketEncryptionType": "0x17"}},
        _event(4769, seconds=600, TargetUserName="alice@CONTOSO.LOCAL", ServiceName="svc_web"),
    ]  # fmt: skip
    edr = InMemoryEdr(events=events)
    assert isinstance(edr, AccountEventReader)
    assert len(Telemetry.from_events(events).accounts) == 3
    read = await edr.account_events("dc1", T0, T0 + timedelta(seconds=60))
    assert [e.services for e in read] == [("svc_sql",), ("svc_backup",)]


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("version: x\naccounts: {}\nevents: {security: {1: {owner: [X]}}}\n", "unknown meaning"),
        ("version: x\naccounts: {}\nevents: {security: {1: {actor: [Nope]}}}\n", "undefined"),
        ("version: x\nsyslog: [{pattern: 'for (\\S+)', meaning: logon}]\n", "no account group"),
    ],
)
def test_a_bad_table_is_refused_naming_the_entry(tmp_path: Path, text: str, error: str) -> None:
    path = tmp_path / "fields.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ValueError, match=error):
        load_meanings(path)
