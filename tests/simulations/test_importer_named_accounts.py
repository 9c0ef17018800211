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
