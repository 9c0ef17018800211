"""Windows' session components keeping the user's profile at a logon (Explorer trimming its
RunMRU list, the runtime broker backing up app data) fire generic high rules: that is no
intrusion, and the host is left alone. The same alerts on a component that started a shell, was
injected into, or runs from a user folder still count."""

from __future__ import annotations

from datetime import timedelta

from agents.deps import AgentDeps
from agents.investigation.graph import run_investigation
from agents.models import InvestigationInput
from agents.remediation.graph import run_remediation
from agents.telemetry import HostTelemetry
from agents.triage.graph import run_triage
from agents.triage.maintenance import maintenance_reason
from tests.agents.fakes import T0, FakeEdr, alert, read_tools
from tests.agents.scenarios import triage_input
from tools.actions import ActionKind
from tools.models import Alert, Asset, Environment, Identity, Severity, Verdict
from tools.results import ProcessEvent, SystemEvent

ERIN = "ws50\\erin"
EXPLORER = r"C:\Windows\explorer.exe"
BROKER = r"C:\Windows\System32\RuntimeBroker.exe"
POWERSHELL = r"C:\Windows\System32\WindowsPowerShell\v1.0\powershell.exe"


def _environment() -> Environment:
    return Environment(
        assets=[
            Asset(id="WS50", hostname="ws50.corp.example", kind="workstation",
                  criticality="medium", ips=["10.60.0.50"]),
        ],
        identities=[Identity(id=ERIN, kind="user")],
        internal_networks=["10.60.0.0/16"],
    )  # fmt: skip


def _alerts() -> list[Alert]:
    """Two high rules on the session's own components, their processes started before the
    window (no record)."""
    return [
        alert("h1", "RunMRU Registry Key Deletion - Registry", Severity.HIGH,
              [("T1070.003", "defense-evasion")], host="WS50", pid=2120, name="Explorer.EXE"),
        alert("h2", "Windows Binaries Write Suspicious Extensions", Severity.HIGH,
              [("T1036", "defense-evasion")], host="WS50", pid=7300, name="RuntimeBroker.exe",
              file_path=r"C:\Users\erin\MicrosoftEdgeBackups\backups\schema.txt",
              time=T0 + timedelta(seconds=5)),
    ]  # fmt: skip


async def _run(edr: FakeEdr) -> tuple[Verdict, set[tuple[ActionKind, str]]]:
    deps = AgentDeps(tools=read_tools(edr, _environment()))
    alerts = _alerts()
    triage = await run_triage(deps, triage_input(alerts))
    report = await run_investigation(
        deps, InvestigationInput(incident_id="inc-1", alerts=alerts, triage=triage)
    )
    plan = await run_remediation(deps, triage, report, frozenset(ActionKind))
    return triage.verdict, {(p.action.kind, p.action.target) for p in plan.proposals}


def _started(pid: int, image: str, parent: int, parent_image: str, cmd: str) -> ProcessEvent:
    return ProcessEvent(time=T0 - timedelta(seconds=30), host="WS50", pid=pid, image=image,
                        cmd_line=cmd, parent_pid=parent, parent_image=parent_image,
                        user=ERIN)  # fmt: skip


async def test_the_session_keeping_its_profile_is_no_intrusion() -> None:
    assert await _run(FakeEdr()) == (Verdict.BENIGN, set())
    # a record of the component, from the Windows folder and its usual parent, changes nothing
    broker = _started(7300, BROKER, 880, r"C:\Windows\System32\svchost.exe", BROKER + " -Embedding")
    assert await _run(FakeEdr(processes=[broker])) == (Verdict.BENIGN, set())


def _reasons(edr: FakeEdr) -> list[str | None]:
    telemetry = HostTelemetry(host="WS50", processes=edr.processes, system=edr.system)
    return [maintenance_reason(a, telemetry) for a in _alerts()]


def test_a_component_that_started_a_shell_or_was_injected_into_still_counts() -> None:
    shell = _started(4400, POWERSHELL, 2120, EXPLORER, "powershell.exe -nop -w hidden")
    injected = SystemEvent(time=T0 - timedelta(seconds=10), host="WS50", event_id=8, pid=5000,
                           image=r"C:\Users\erin\Downloads\tool.exe", target_pid=7300,
                           target_image=BROKER)  # fmt: skip
    assert all(_reasons(FakeEdr()))  # both housekeeping when nothing shows a takeover
    assert _reasons(FakeEdr(processes=[shell]))[0] is None
    assert _reasons(FakeEdr(system=[injected]))[1] is None


def test_a_component_name_run_from_a_user_folder_is_no_component() -> None:
    fake = _started(2120, r"C:\Users\erin\AppData\Roaming\explorer.exe", 900,
                    r"C:\Windows\System32\userinit.exe", "explorer.exe")  # fmt: skip
    assert _reasons(FakeEdr(processes=[fake]))[0] is None


async def test_both_taken_over_is_an_intrusion_again() -> None:
    shell = _started(4400, POWERSHELL, 2120, EXPLORER, "powershell.exe -nop -w hidden")
    injected = SystemEvent(time=T0 - timedelta(seconds=10), host="WS50", event_id=8, pid=5000,
                           image=r"C:\Users\erin\Downloads\tool.exe", target_pid=7300,
                           target_image=BROKER)  # fmt: skip
    verdict, got = await _run(FakeEdr(processes=[shell], system=[injected]))
    assert verdict is Verdict.MALICIOUS and (ActionKind.ISOLATE_HOST, "WS50") in got


def test_explorer_used_for_the_attack_is_not_housekeeping() -> None:
    # the user's double-click on a downloaded payload, and Explorer stripping its mark of the web
    payload = _started(6100, r"C:\Users\erin\Downloads\invoice.exe", 2120, EXPLORER, "invoice.exe")
    assert _reasons(FakeEdr(processes=[payload]))[0] is None
    motw = alert("h3", "ADS Zone.Identifier Deleted", Severity.LOW,
                 [("T1070.004", "defense-evasion")], host="WS50", pid=2120, name="Explorer.EXE",
                 file_path=r"C:\Users\erin\Downloads\invoice.exe:Zone.Identifier")  # fmt: skip
    assert maintenance_reason(motw, HostTelemetry(host="WS50")) is None
