"""Replication rights granted on the domain root by a compromised account: a DCSync backdoor,
removed from the directory object; an ACE that was already there, or one for the domain
controllers, is nobody's backdoor. The DC's Security 5136 records are read as system events."""

from __future__ import annotations

from datetime import timedelta

from agents.deps import AgentDeps
from agents.directory_acl import replication_grants
from agents.investigation.graph import run_investigation
from agents.models import InvestigationInput
from agents.persistence.attribution import Attacker
from agents.remediation.graph import run_remediation
from agents.telemetry import HostTelemetry
from agents.triage.graph import run_triage
from tests.agents.fakes import T0, FakeEdr, alert, read_tools
from tests.agents.scenarios import triage_input
from tools.actions import ActionKind
from tools.models import Alert, Asset, Environment, Identity, Severity
from tools.results import SystemEvent
from tools.telemetry import Telemetry

CAROL = "corp\\carol"
DOMAIN = "DC=corp,DC=example"
SID = "S-1-5-21-1111111111-2222222222-3333333333"
GET_CHANGES = "1131f6aa-9c07-11d1-f79f-00c04fc2dcd2"
GET_CHANGES_ALL = "1131f6ad-9c07-11d1-f79f-00c04fc2dcd2"
BASE = (
    "O:BAG:BAD:AI(OA;;CR;" + GET_CHANGES + ";;" + SID + "-498)(OA;;CR;" + GET_CHANGES_ALL
    + ";;BA)(OA;;CR;" + GET_CHANGES + ";;" + SID + "-1500)(A;;RPRC;;;RU)"
)  # fmt: skip  # the RODCs, the administrators and an existing sync account already replicate


def _environment() -> Environment:
    return Environment(
        assets=[
            Asset(id="WS40", hostname="ws40.corp.example", kind="workstation",
                  criticality="medium", ips=["10.50.0.40"]),
            Asset(id="DC40", hostname="dc40.corp.example", kind="domain_controller",
                  criticality="critical", ips=["10.50.0.4"]),
        ],
        identities=[Identity(id=CAROL, kind="user")],
        internal_networks=["10.50.0.0/16"],
        protected=["DC40"],
    )  # fmt: skip


def _change(operation: str, value: str, seconds: float = 0, user: str = "CORP\\carol",
            name: str = DOMAIN) -> SystemEvent:  # fmt: skip
    return SystemEvent(time=T0 + timedelta(seconds=seconds), host="DC40", event_id=5136,
                       user=user, name=name, command=value,
                       detail=f"nTSecurityDescriptor {operation}")  # fmt: skip


def _grant(trustee: str) -> list[SystemEvent]:
    added = BASE + f"(OA;;CR;{GET_CHANGES};;{trustee})(OA;;CR;{GET_CHANGES_ALL};;{trustee})"
    return [_change("deleted", BASE), _change("added", added, 0.001)]


def _alerts() -> list[Alert]:
    return [
        alert("a1", "Powerview Add-DomainObjectAcl DCSync AD Extend Right", Severity.HIGH,
              [("T1098", "persistence")], host="DC40", user=CAROL),
    ]  # fmt: skip


async def test_replication_rights_granted_by_the_attacker_are_removed_from_the_object() -> None:
    deps = AgentDeps(tools=read_tools(FakeEdr(system=_grant(SID + "-1601")), _environment()))
    alerts = _alerts()
    triage = await run_triage(deps, triage_input(alerts))
    report = await run_investigation(
        deps, InvestigationInput(incident_id="inc-1", alerts=alerts, triage=triage)
    )
    plan = await run_remediation(deps, triage, report, frozenset(ActionKind))
    got = {(p.action.kind, p.action.target) for p in plan.proposals}
    assert (ActionKind.REMOVE_PERSISTENCE, f"DC40:{DOMAIN}") in got


def test_an_ace_already_there_or_for_the_domain_controllers_is_no_grant() -> None:
    carol = Attacker(frozenset(), frozenset(), frozenset({"carol"}), frozenset())
    unchanged = [_change("deleted", BASE), _change("added", BASE + "(A;;RP;;;AU)", 0.001)]
    controllers = _grant(SID + "-516")
    for events in (unchanged, controllers):
        assert replication_grants(HostTelemetry(host="DC40", system=events), carol) == []
    # the same grant by an account nobody holds compromised is left to the analyst
    nobody = Attacker(frozenset(), frozenset(), frozenset({"dave"}), frozenset())
    assert (
        replication_grants(HostTelemetry(host="DC40", system=_grant(SID + "-1601")), nobody) == []
    )
    # and a grant to a new principal by the attacker is one
    [found] = replication_grants(HostTelemetry(host="DC40", system=_grant(SID + "-1601")), carol)
    assert found.target == f"DC40:{DOMAIN}"


def test_the_directory_change_record_is_read() -> None:
    raw = [
        {"@timestamp": "2024-01-01T00:00:00Z", "host": "DC40", "event_source": "security",
         "EventID": 5136, "OperationType": "%%14674", "ObjectDN": DOMAIN,
         "AttributeLDAPDisplayName": "nTSecurityDescriptor", "AttributeValue": BASE,
         "SubjectUserName": "carol", "SubjectDomainName": "CORP"},
    ]  # fmt: skip
    [event] = Telemetry.from_events(raw).system
    assert (event.event_id, event.name, event.detail, event.user) == (
        5136,
        DOMAIN,
        "nTSecurityDescriptor added",
        "CORP\\carol",
    )
    assert event.command == BASE
