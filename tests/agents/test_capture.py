"""Microphone and webcam capture: the device consent store names the program that used the
device; a shell or a hand-brought program is the attacker recording (the host is isolated),
a meeting client is somebody's call. The Security 4657 records of the store are read too."""

from __future__ import annotations

from datetime import timedelta

from agents.deps import AgentDeps
from agents.investigation.graph import run_investigation
from agents.models import InvestigationInput
from agents.remediation.graph import run_remediation
from agents.triage.graph import run_triage
from tests.agents.fakes import T0, FakeEdr, alert, read_tools
from tests.agents.scenarios import triage_input
from tools.actions import ActionKind
from tools.models import Alert, Asset, Category, Environment, Severity, Verdict
from tools.results import RegistryEvent
from tools.telemetry import Telemetry

STORE = r"HKLM\SOFTWARE\Microsoft\Windows\CurrentVersion\CapabilityAccessManager\ConsentStore"
SVCHOST = r"C:\Windows\System32\svchost.exe"


def _environment() -> Environment:
    return Environment(
        assets=[
            Asset(id="WS20", hostname="ws20.corp.example", kind="workstation",
                  criticality="medium", ips=["10.30.0.20"]),
        ],
        internal_networks=["10.30.0.0/16"],
    )  # fmt: skip


def _alerts() -> list[Alert]:
    """The store's rule fires on the service that writes it, as the machine account."""
    return [
        alert("m1", "Processes Accessing the Microphone and Webcam", Severity.MEDIUM,
              [("T1123", "collection")], host="WS20", user="corp\\ws20$", pid=7920,
              name="svchost.exe"),
    ]  # fmt: skip


def _used(device: str, program: str) -> RegistryEvent:
    key = f"{STORE}\\{device}\\NonPackaged\\{program.replace(chr(92), '#')}\\LastUsedTimeStop"
    return RegistryEvent(time=T0 + timedelta(seconds=1), host="WS20", pid=7920, image=SVCHOST,
                         operation="SetValue", key=key, details="0x1D63ED21D4ADB0A",
                         user="CORP\\WS20$")  # fmt: skip


async def _run(edr: FakeEdr) -> tuple[Verdict, Category, set[tuple[ActionKind, str]]]:
    deps = AgentDeps(tools=read_tools(edr, _environment()))
    alerts = _alerts()
    triage = await run_triage(deps, triage_input(alerts))
    report = await run_investigation(
        deps, InvestigationInput(incident_id="inc-1", alerts=alerts, triage=triage)
    )
    plan = await run_remediation(deps, triage, report, frozenset(ActionKind))
    category = report.category or triage.category
    return triage.verdict, category, {(p.action.kind, p.action.target) for p in plan.proposals}


async def test_a_shell_recording_the_microphone_is_collection_and_the_host_is_isolated() -> None:
    powershell = r"C:\Windows\System32\WindowsPowerShell\v1.0\powershell.exe"
    verdict, category, got = await _run(FakeEdr(registry=[_used("microphone", powershell)]))
    assert verdict is Verdict.MALICIOUS
    assert category is Category.EXFILTRATION  # collection and exfiltration share a response
    assert (ActionKind.ISOLATE_HOST, "WS20") in got


async def test_a_program_from_the_downloads_folder_using_the_webcam_is_the_attackers() -> None:
    grabber = r"C:\Users\bob\Downloads\camview.exe"
    verdict, _, _ = await _run(FakeEdr(registry=[_used("webcam", grabber)]))
    assert verdict is Verdict.MALICIOUS


async def test_a_meeting_client_using_the_microphone_is_somebodys_call() -> None:
    teams = r"C:\Users\bob\AppData\Local\Microsoft\Teams\current\Teams.exe"
    verdict, _, got = await _run(FakeEdr(registry=[_used("microphone", teams)]))
    assert verdict is Verdict.BENIGN and got == set()


def test_the_security_log_record_of_a_registry_value_is_read() -> None:
    raw = [
        {"@timestamp": "2024-01-01T00:00:00Z", "host": "WS20", "event_source": "security",
         "EventID": 4657, "ObjectName": "\\REGISTRY\\MACHINE\\SOFTWARE\\Vendor\\Key",
         "ObjectValueName": "LastUsedTimeStop", "NewValue": "0x0", "ProcessId": "0x1ef0",
         "ProcessName": SVCHOST, "SubjectUserName": "WS20$", "SubjectDomainName": "CORP"},
    ]  # fmt: skip
    [write] = Telemetry.from_events(raw).registry
    assert write.key == "HKLM\\SOFTWARE\\Vendor\\Key\\LastUsedTimeStop"
    assert (write.pid, write.image, write.user) == (0x1EF0, SVCHOST, "CORP\\WS20$")
