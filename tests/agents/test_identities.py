"""Identities as an analyst reads them (issue 12, causes 2 and 3), on small incidents written for
it: the service accounts a Kerberoasting request names, one account whatever its spelling,
ANONYMOUS LOGON and machine accounts never a person, and the accounts an attacker's command line
uses. The raw events go through the recorded twin (`InMemoryEdr`), as in a replay."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from agents.deps import AgentDeps
from agents.entities import AssetIndex, extract_entities
from agents.investigation.graph import run_investigation
from agents.models import InvestigationInput, InvestigationReport, TriageResult
from agents.remediation.nodes import deterministic_plan
from agents.remediation.state import RemediationInput
from agents.triage.graph import run_triage
from tests.agents.fakes import T0, FakeIdentity, FakeIntel, FakeInventory, alert
from tests.agents.scenarios import triage_input
from tools.actions import ActionKind
from tools.edr.memory import InMemoryEdr
from tools.models import Alert, Asset, Environment, Identity, Severity, Verdict
from tools.toolsets import ReadTools

RUBEUS_KERBEROAST = (
    r"C:\Users\mallory\Downloads\Rubeus.exe kerberoast /outfile:C:\Users\Public\h.txt"
)
NT_HASH = "0123456789abcdef0123456789abcdef"
EXPLOIT = r"C:\Users\Public\exploit.exe"
IDENTITY_ACTIONS = (
    ActionKind.DISABLE_ACCOUNT,
    ActionKind.RESET_CREDENTIALS,
    ActionKind.REVOKE_SESSIONS,
)


def contoso() -> Environment:
    """A small domain (NetBIOS CONTOSO, DNS contoso.local): a DC, two workstations, people and
    two service accounts."""
    return Environment(
        assets=[
            Asset(id="DC1", hostname="DC1.contoso.local", kind="domain_controller",
                  criticality="critical", ips=["10.20.0.10"]),
            Asset(id="WS07", hostname="WS07.contoso.local", kind="workstation",
                  criticality="medium", ips=["10.20.0.7"], owner="contoso\\mallory"),
            Asset(id="WS08", hostname="WS08.contoso.local", kind="workstation",
                  criticality="medium", ips=["10.20.0.8"], owner="contoso\\alice"),
        ],
        identities=[
            Identity(id="contoso\\mallory", kind="user"),
            Identity(id="contoso\\alice", kind="user"),
            Identity(id="contoso\\bob", kind="user"),
            Identity(id="contoso\\svc_sql", kind="service"),
            Identity(id="contoso\\svc_backup", kind="service"),
            Identity(id="contoso\\svc_web", kind="service"),
        ],
        internal_networks=["10.20.0.0/16"],
    )  # fmt: skip


def _event(seconds: int, host: str, source: str, number: int, **fields: Any) -> dict[str, Any]:
    stamp = (T0 + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")
    return {"@timestamp": stamp, "host": host, "event_source": source, "EventID": number, **fields}


def _ticket(seconds: int, requester: str, service: str, encryption: str) -> dict[str, Any]:
    """A 4769 as a DC writes it: the requester as a UPN, the service by account name."""
    return _event(
        seconds, "DC1", "security", 4769,
        TargetUserName=f"{requester}@CONTOSO.LOCAL", TargetDomainName="CONTOSO.LOCAL",
        ServiceName=service, ServiceSid="S-1-5-21-1-2-3-1105", TicketEncryptionType=encryption,
        IpAddress="::ffff:10.20.0.7", Status="0x0",
    )  # fmt: skip


def _process(seconds: int, host: str, pid: int, image: str, cmd: str, user: str, **more: Any):
    return _event(
        seconds, host, "sysmon", 1,
        ProcessId=pid, Image=image, CommandLine=cmd, User=user, **more,
    )  # fmt: skip


def _tools(events: list[dict[str, Any]], env: Environment) -> ReadTools:
    return ReadTools(
        edr=InMemoryEdr(env, events),
        identity=FakeIdentity(),
        intel=FakeIntel(),
        inventory=FakeInventory(env),
    )


async def _run(
    alerts: list[Alert], events: list[dict[str, Any]], env: Environment
) -> tuple[TriageResult, InvestigationReport]:
    deps = AgentDeps(tools=_tools(events, env))
    triage = await run_triage(deps, triage_input(alerts))
    report = await run_investigation(
        deps, InvestigationInput(incident_id="inc-1", alerts=alerts, triage=triage)
    )
    return triage, report


def _plan(triage: TriageResult, report: InvestigationReport) -> list[tuple[ActionKind, str]]:
    request = RemediationInput(triage=triage, report=report, allowed_kinds=frozenset(ActionKind))
    return [(p.action.kind, p.action.target) for p in deterministic_plan(request)]


# --- Kerberoasting: the roasted service accounts ---------------------------------------------


def kerberoast_alerts() -> list[Alert]:
    return [
        alert("k1", "HackTool - Rubeus Execution", Severity.CRITICAL,
              [("T1558.003", "credential-access")], host="WS07", user="CONTOSO\\mallory",
              pid=4120, name="Rubeus.exe", cmd=RUBEUS_KERBEROAST),
        alert("k2", "Suspicious Kerberos RC4 Ticket Encryption", Severity.HIGH,
              [("T1558.003", "credential-access")], host="DC1",
              user="contoso.local\\mallory@contoso.local", time=T0 + timedelta(seconds=3)),
    ]  # fmt: skip


def kerberoast_events() -> list[dict[str, Any]]:
    return [
        _process(0, "WS07", 4120, r"C:\Users\mallory\Downloads\Rubeus.exe", RUBEUS_KERBEROAST,
                 "CONTOSO\\mallory", ParentProcessId=3000,
                 ParentImage=r"C:\Windows\System32\cmd.exe"),
        _ticket(2, "mallory", "svc_sql", "0x17"),
        _ticket(3, "mallory", "svc_backup", "0x17"),
        _ticket(3, "mallory", "WS08$", "0x17"),  # a machine's key is random: nothing to crack
        _ticket(4, "mallory", "krbtgt", "0x17"),
        _ticket(5, "alice", "svc_web", "0x17"),  # another user's legacy client, not the roaster
        _ticket(6, "mallory", "svc_web", "0x12"),  # AES: not what roasting asks for
    ]  # fmt: skip


async def test_kerberoasting_names_both_roasted_service_accounts() -> None:
    triage, report = await _run(kerberoast_alerts(), kerberoast_events(), contoso())
    assert triage.verdict is Verdict.MALICIOUS
    identities = {i.lower() for i in report.compromised_identities}
    assert {"contoso\\svc_sql", "contoso\\svc_backup", "contoso\\mallory"} <= identities
    assert not identities & {"contoso\\svc_web", "contoso\\alice", "ws08$", "contoso\\ws08$"}
    assert not any("krbtgt" in i for i in identities)
    disabled = {t.lower() for k, t in _plan(triage, report) if k is ActionKind.DISABLE_ACCOUNT}
    assert {"contoso\\svc_sql", "contoso\\svc_backup"} <= disabled


async def test_rc4_tickets_without_a_kerberos_alert_name_nobody() -> None:
    """Legacy clients ask for RC4 every day: only a Kerberos-ticket alert makes them roasting."""
    alerts = [kerberoast_alerts()[0].model_copy(update={"attacks": []})]
    _, report = await _run(alerts, kerberoast_events(), contoso())
    assert not any("svc_" in i for i in report.compromised_identities)


# --- one identity, several spellings ----------------------------------------------------------


def spelling_alerts() -> list[Alert]:
    """The same person as a Kerberos event's glued UPN, a UPN, a DNS-domain and a NetBIOS name."""
    return [
        alert("s1", "Suspicious Kerberos RC4 Ticket Encryption", Severity.HIGH,
              [("T1558.003", "credential-access")], host="DC1",
              user="contoso.local\\bob@contoso.local"),
        alert("s2", "Pass the Ticket Activity", Severity.HIGH,
              [("T1550.003", "lateral-movement")], host="WS08", user="bob@CONTOSO.LOCAL"),
        alert("s3", "Net Use With Credentials", Severity.MEDIUM,
              [("T1021.002", "lateral-movement")], host="WS08", user="contoso.local\\Bob"),
        alert("s4", "Remote Service Creation", Severity.HIGH,
              [("T1569.002", "execution")], host="WS08", user="CONTOSO\\bob"),
    ]  # fmt: skip


def test_every_spelling_of_one_account_is_one_identity() -> None:
    entities = extract_entities(spelling_alerts(), AssetIndex(contoso()))
    assert entities.users == ["contoso\\bob"]


def test_an_account_outside_the_inventory_keeps_one_canonical_spelling() -> None:
    alerts = [
        alert("o1", "x", Severity.HIGH, [], host="WS08", user="eve@CONTOSO.LOCAL"),
        alert("o2", "x", Severity.HIGH, [], host="WS08", user="contoso.local\\eve@contoso.local"),
        alert("o3", "x", Severity.HIGH, [], host="WS08", user="CONTOSO\\eve"),
    ]
    assert extract_entities(alerts, AssetIndex(contoso())).users == ["contoso\\eve"]


# --- ANONYMOUS LOGON, the system's principals and machine accounts ----------------------------


def anonymous_alerts() -> list[Alert]:
    """A DC records its own machine account changed by ANONYMOUS LOGON (a Netlogon exploit), and
    session principals show up on the workstation."""
    return [
        alert("a1", "Machine Account Password Changed by Anonymous Logon", Severity.HIGH,
              [("T1210", "lateral-movement")], host="DC1",
              user="NT AUTHORITY\\ANONYMOUS LOGON"),
        alert("a2", "Suspicious Netlogon Client", Severity.HIGH,
              [("T1210", "lateral-movement")], host="WS07", user="ANONYMOUS LOGON",
              pid=5200, name="exploit.exe", cmd=f"{EXPLOIT} DC1"),
        alert("a3", "Desktop Window Manager Child", Severity.MEDIUM,
              [("T1059.003", "execution")], host="WS07", user="Window Manager\\DWM-2"),
        alert("a4", "Computer Account Logon", Severity.MEDIUM,
              [("T1078", "defense-evasion")], host="DC1", user="CONTOSO\\DC1$"),
        alert("a5", "Font Driver Host Oddity", Severity.LOW, [], host="WS07",
              user="Font Driver Host\\UMFD-1"),
    ]  # fmt: skip


def anonymous_events() -> list[dict[str, Any]]:
    return [
        _process(0, "WS07", 5200, EXPLOIT, f"{EXPLOIT} DC1", "NT AUTHORITY\\ANONYMOUS LOGON",
                 ParentProcessId=3000,
                 ParentImage=r"C:\Windows\System32\cmd.exe"),
        _event(1, "DC1", "security", 4742, SubjectUserName="ANONYMOUS LOGON",
               SubjectDomainName="NT AUTHORITY", SubjectUserSid="S-1-5-7",
               TargetUserName="DC1$", TargetDomainName="CONTOSO"),
    ]  # fmt: skip


def test_anonymous_logon_and_system_principals_are_never_users() -> None:
    entities = extract_entities(anonymous_alerts(), AssetIndex(contoso()))
    assert entities.users == []


async def test_anonymous_logon_is_never_compromised_nor_disabled() -> None:
    triage, report = await _run(anonymous_alerts(), anonymous_events(), contoso())
    assert report.verdict is Verdict.MALICIOUS
    lowered = " ".join(report.compromised_identities).lower()
    for principal in ("anonymous", "dwm-", "umfd-", "$"):
        assert principal not in lowered
    assert [(k, t) for k, t in _plan(triage, report) if k in IDENTITY_ACTIONS] == []
    assert any(k is ActionKind.ISOLATE_HOST for k, _ in _plan(triage, report))


# --- accounts an attacker's command line names ------------------------------------------------


async def test_command_line_credentials_are_used_and_named_accounts_only_reported() -> None:
    asktgt = rf"C:\Users\mallory\Downloads\Rubeus.exe asktgt /user:bob /rc4:{NT_HASH} /ptt"
    alerts = [
        alert("c1", "HackTool - Rubeus Execution", Severity.CRITICAL,
              [("T1550.002", "lateral-movement")], host="WS07", user="CONTOSO\\mallory",
              pid=4300, name="Rubeus.exe", cmd=asktgt),
        alert("c2", "Net User Domain Query", Severity.MEDIUM, [("T1087.002", "discovery")],
              host="WS07", user="CONTOSO\\mallory", pid=4400, name="net.exe",
              cmd="net user alice /domain"),
    ]  # fmt: skip
    events = [
        _process(0, "WS07", 4300, r"C:\Users\mallory\Downloads\Rubeus.exe", asktgt,
                 "CONTOSO\\mallory", ParentProcessId=3000,
                 ParentImage=r"C:\Windows\System32\cmd.exe"),
        _process(5, "WS07", 4400, r"C:\Windows\System32\net.exe", "net user alice /domain",
                 "CONTOSO\\mallory", ParentProcessId=4300,
                 ParentImage=r"C:\Users\mallory\Downloads\Rubeus.exe"),
    ]  # fmt: skip
    _, report = await _run(alerts, events, contoso())
    identities = {i.lower() for i in report.compromised_identities}
    assert "contoso\\bob" in identities  # its hash was handed to Rubeus: credentials obtained
    assert "contoso\\alice" not in identities  # only looked up
    assert any("alice" in f.summary for f in report.findings)
