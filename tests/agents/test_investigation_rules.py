"""What the investigation puts in scope and keeps out: endpoints, DCs that served a request,
the two ends of a lateral movement, critical processes, drop-folder tools, planted DLLs."""

from __future__ import annotations

from agents.deps import AgentDeps
from agents.entities import AssetIndex
from agents.investigation.graph import run_investigation
from agents.investigation.scope import (
    Scope,
    add_connection,
    add_source,
    scope_hijacks,
    scope_movers,
)
from agents.models import InvestigationInput, InvestigationReport
from agents.remediation.nodes import persistence_artefacts
from agents.telemetry import HostTelemetry
from agents.triage.graph import run_triage
from tests.agents.fakes import T0, FakeEdr, alert, lab_environment, read_tools
from tests.agents.scenarios import dcsync_alerts, dcsync_edr, triage_input
from tools.models import Alert, Severity
from tools.results import NetworkConnection, ProcessEvent, RegistryEvent

PID = 3100


def _scope_of(*connections: tuple[str | None, int | None, str | None]) -> tuple[Scope, list[str]]:
    """Scope one attacker process's connections (dst, port, looked-up name)."""
    conns = [
        NetworkConnection(time=T0, host="PRD01", pid=PID, dst_ip=ip, dst_port=port, domain=name)
        for ip, port, name in connections
    ]
    scope = Scope()
    telemetry = HostTelemetry(host="PRD01", connections=conns)
    index = AssetIndex(lab_environment())
    for conn in conns:
        add_connection(scope, index, telemetry, conn, True, {"172.18.39.6"})
    return scope, scope.ips


def test_internal_machines_on_windows_service_ports_are_never_attacker_endpoints() -> None:
    _, ips = _scope_of(("172.18.40.9", 445, None), ("172.18.40.9", 135, None))
    assert ips == []
    _, ips = _scope_of(("172.18.40.9", 135, None), ("172.18.40.9", 49674, None))
    assert ips == []  # the dynamic RPC port the endpoint mapper handed out
    _, ips = _scope_of(("172.18.40.9", 49674, None))
    assert ips == ["172.18.40.9"]  # a high port with no endpoint mapper first: a listener
    _, ips = _scope_of(("172.18.40.9", 8080, None))
    assert ips == ["172.18.40.9"]  # an internal C2 is still blocked (labelling rule 4)


def test_front_ends_of_shared_services_are_not_blocked() -> None:
    scope, ips = _scope_of(
        (None, None, "github.com"),
        (None, None, "raw.githubusercontent.com"),
        ("140.82.112.4", 443, None),
        ("151.101.248.133", 443, None),
    )
    assert (ips, scope.domains) == ([], [])
    scope, ips = _scope_of((None, None, "cdn.evil-c2.example"), ("203.0.113.9", 443, None))
    assert (ips, scope.domains) == (["203.0.113.9"], ["cdn.evil-c2.example"])
    _, ips = _scope_of((None, None, "github.com"), ("203.0.113.9", 4444, None))
    assert ips == ["203.0.113.9"]  # not a web port: not the service's front end


def test_sources_inside_the_estate_are_reported_not_blocked() -> None:
    scope, index = Scope(), AssetIndex(lab_environment())
    add_source(scope, index, "172.18.40.9", "the logon of bob")
    assert scope.ips == []
    assert any("172.18.40.9" in f.summary for f in scope.findings)
    add_source(scope, index, "1.2.3.4", "the logon of bob")
    assert scope.ips == ["1.2.3.4"]


def test_host_that_reached_an_attacked_host_is_the_source_and_its_account_the_one_used() -> None:
    hop = alert("m1", "Network Connection Initiated By PowerShell", Severity.LOW,
                [("T1059.001", "execution")], host="WS02", user="pandalab\\pedro.gustavo",
                dst_ip="172.18.39.6")  # fmt: skip
    scope = Scope(attacked={"PRD01"})
    scope_movers(scope, [hop], AssetIndex(lab_environment()))
    assert (scope.assets, scope.identities) == (["WS02"], ["pandalab\\pedro.gustavo"])
    quiet = Scope()  # nothing ran on PRD01: the connection is not a movement
    scope_movers(quiet, [hop], AssetIndex(lab_environment()))
    assert quiet.assets == []


def _hijack(host: str, actor: str, path: str) -> Alert:
    return alert("h-" + actor, "DLL Hijack", Severity.HIGH, [("T1574.001", "persistence")],
                 host=host, pid=1, name=actor, file_path=path)  # fmt: skip


def test_a_dll_a_service_loads_is_persistence_the_copy_a_shell_wrote_is_not() -> None:
    dll = r"C:\Windows\System32\wlbsctrl.dll"
    scope = Scope()
    scope_hijacks(
        scope,
        [_hijack("PRD01", "svchost.exe", dll), _hijack("WS02", "powershell.exe", dll),
         _hijack("WS02", "System", dll), _hijack("WS02", "app.exe", r"C:\Temp\app.exe")],
        AssetIndex(lab_environment()),
    )  # fmt: skip
    assert [e for f in scope.persistence for e in f.evidence] == [f"PRD01:{dll}"]


async def _investigate(alerts: list[Alert], edr: FakeEdr) -> InvestigationReport:
    deps = AgentDeps(tools=read_tools(edr))
    triage = await run_triage(deps, triage_input(alerts))
    return await run_investigation(
        deps, InvestigationInput(incident_id="inc-1", alerts=alerts, triage=triage)
    )


async def test_dcsync_seen_by_the_dc_scopes_the_requesting_host_and_krbtgt() -> None:
    report = await _investigate(dcsync_alerts(), dcsync_edr())
    assert report.compromised_assets == ["PRD01"]
    assert report.served_assets == ["DC01"]
    assert report.compromised_identities == ["pandalab\\pedro.gustavo", "pandalab\\krbtgt"]


async def test_critical_processes_are_never_the_attackers_and_drop_folder_tools_are() -> None:
    dumper = ProcessEvent(time=T0, host="PRD01", pid=6772, image=r"C:\Users\pedro\Desktop\d.exe",
                          cmd_line="d.exe", parent_pid=900, parent_image="explorer.exe",
                          user="PANDALAB\\pedro.gustavo")  # fmt: skip
    scm = ProcessEvent(time=T0, host="PRD01", pid=704, image=r"C:\Windows\System32\services.exe",
                       parent_pid=600, parent_image="wininit.exe",
                       user="NT AUTHORITY\\SYSTEM")  # fmt: skip
    alerts = [
        alert("k1", "LSASS Memory Access by Tool With Dump Keyword", Severity.CRITICAL,
              [("T1003.001", "credential-access")], user="pandalab\\pedro.gustavo", pid=6772,
              name="d.exe"),
        alert("k2", "SCM Database Privileged Operation", Severity.MEDIUM,
              [("T1548", "privilege-escalation")], pid=704, name="services.exe"),
    ]  # fmt: skip
    report = await _investigate(alerts, FakeEdr(processes=[dumper, scm]))
    assert report.malicious_processes == ["PRD01:6772"]
    assert report.compromised_identities == ["pandalab\\pedro.gustavo"]
    assert persistence_artefacts(report) == []


async def test_a_reused_pid_is_not_the_alerting_process() -> None:
    # powershell 5376 wrote the Run key and exited; Windows gave 5376 to a taskhostw later on
    later = ProcessEvent(time=T0, host="PRD01", pid=5376, image="taskhostw.exe",
                         cmd_line="taskhostw.exe", parent_pid=1144, parent_image="svchost.exe",
                         user="PANDALAB\\pedro.gustavo")  # fmt: skip
    run_key = r"HKU\S-1-5-21-1-2-3-1104\Software\Microsoft\Windows\CurrentVersion\Run\Updater"
    write = RegistryEvent(time=T0, host="PRD01", pid=5376, operation="SetValue", key=run_key,
                          image="powershell.exe")  # fmt: skip
    alerts = [
        alert("r1", "Suspicious PowerShell In Registry Run Keys", Severity.MEDIUM,
              [("T1547.001", "persistence")], pid=5376, name="powershell.exe"),
        alert("r2", "HackTool - Mimikatz Execution", Severity.HIGH,
              [("T1003.001", "credential-access")], user="pandalab\\pedro.gustavo"),
    ]  # fmt: skip
    report = await _investigate(alerts, FakeEdr(processes=[later], registry=[write]))
    assert persistence_artefacts(report) == [f"PRD01:{run_key}"]


async def test_the_kernel_pid_and_netbios_broadcasts_name_no_attacker_endpoint() -> None:
    netbios = [
        NetworkConnection(time=T0, host="PRD01", pid=4, dst_ip="172.18.39.255", dst_port=port)
        for port in (137, 138)
    ]
    alerts = [
        alert("d1", "Potential Defense Evasion Via Raw Disk Access By Uncommon Tools", Severity.LOW,
              [("T1006", "defense-evasion")], pid=4, name="<unknown process>"),
        alert("d2", "HackTool - Mimikatz Execution", Severity.HIGH,
              [("T1003.001", "credential-access")], user="pandalab\\pedro.gustavo"),
    ]  # fmt: skip
    report = await _investigate(alerts, FakeEdr(connections=netbios))
    assert report.attacker_ips == []
    assert "PRD01:4" not in report.malicious_processes
    _, ips = _scope_of(("172.18.40.9", 138, None), ("172.18.40.255", 137, None))
    assert ips == []  # NetBIOS is the estate's name service, whoever sends it
