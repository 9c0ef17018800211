"""The importer's directory knows the accounts an incident's events name by meaning (issue 12,
cause 2): a Kerberoasting incident's roasted service accounts are identities, so that their
containment has a target in the replay's directory."""

from __future__ import annotations

from typing import Any

from simulations.importers.otrf.environment import HostFacts, build_environment
from tools.models import IdentityKind


def _ticket(service: str, encryption: str = "0x17") -> dict[str, Any]:
    return {
        "@timestamp": "2024-03-04T10:00:00Z", "host": "DC1", "event_source": "security",
        "EventID": 4769, "TargetUserName": "mallory@CONTOSO.LOCAL",
        "TargetDomainName": "CONTOSO.LOCAL", "ServiceName": service,
        "TicketEncryptionType": encryption,
    }  # fmt: skip


def test_service_ticket_accounts_become_identities_once_and_machines_never() -> None:
    telemetry = [
        _ticket("svc_sql"),
        _ticket("svc_sql", "0x12"),
        _ticket("WS07$"),
        _ticket("krbtgt"),
    ]
    environment = build_environment(HostFacts(), [], telemetry)
    services = {i.id: i.kind for i in environment.identities}
    assert services.get("contoso\\svc_sql") is IdentityKind.SERVICE
    assert not any("ws07$" in i.lower() for i in services)
    assert sum("svc_sql" in i for i in services) == 1


def _event(number: int, **fields: Any) -> dict[str, Any]:
    return {
        "@timestamp": "2024-03-04T10:00:00Z", "host": "WS07", "hostname": "WS07.contoso.local",
        "event_source": "security", "EventID": number, **fields,
    }  # fmt: skip


def test_accounts_whose_credentials_are_presented_or_handed_over_become_identities() -> None:
    """A pass-the-hash logon's outbound account and a `/user:X /rc4:...` account are in the
    directory like the alerts' users; a made-up account of no domain of the estate is not."""
    telemetry = [
        _event(4688, SubjectUserName="mallory", SubjectDomainName="CONTOSO",
               NewProcessId="0x10", NewProcessName=r"C:\\Users\\Public\\Rubeus.exe",
               CommandLine=r"Rubeus.exe asktgt /user:carol /rc4:0123456789abcdef0123456789abcdef"),
        _event(4624, LogonType="9", SubjectUserName="mallory", SubjectDomainName="CONTOSO",
               TargetUserName="mallory", TargetDomainName="CONTOSO",
               TargetOutboundUserName="dave", TargetOutboundDomainName="contoso.local"),
        _event(4624, LogonType="9", SubjectUserName="mallory", SubjectDomainName="CONTOSO",
               TargetUserName="mallory", TargetDomainName="CONTOSO",
               TargetOutboundUserName="QX7Z2K", TargetOutboundDomainName="R4ND0M"),
        _event(4688, SubjectUserName="mallory", SubjectDomainName="CONTOSO",
               NewProcessId="0x11", NewProcessName=r"C:\\Windows\\System32\\net.exe",
               CommandLine="net user erin /domain"),
    ]  # fmt: skip
    facts = HostFacts()
    for event in telemetry:
        facts.observe(event)
    environment = build_environment(facts, [], telemetry)
    ids = {i.id for i in environment.identities}
    assert {"contoso\\carol", "contoso\\dave"} <= ids
    assert not any("qx7z2k" in i or "erin" in i for i in ids)
