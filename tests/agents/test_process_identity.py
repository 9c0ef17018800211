"""Process identity (`agents/processes.py`): a pid names the process that had it at the event's
time, never the first process recorded with it. Hand-written incidents: an updater and, later,
a dropped payload under one pid on one host."""

from __future__ import annotations

from datetime import timedelta

from agents.deps import AgentDeps
from agents.investigation.graph import run_investigation
from agents.models import InvestigationInput, InvestigationReport
from agents.processes import ProcessKey, ProcessTable
from agents.telemetry import HostTelemetry
from agents.triage.graph import run_triage
from tests.agents.fakes import T0, FakeEdr, alert, read_tools
from tests.agents.scenarios import triage_input
from tools.event_mappers import to_process_event
from tools.models import Alert, Severity
from tools.results import NetworkConnection, ProcessEvent

PID = 4242
UPDATER_SHA = "a" * 64
PAYLOAD_SHA = "b" * 64
UPDATE_SERVER = "172.18.40.20"  # an estate update server missing from the inventory
C2 = "203.0.113.66"

UPDATER = ProcessEvent(
    time=T0 - timedelta(minutes=5), host="PRD01", pid=PID,
    image="C:\\Program Files\\Contoso\\Updater\\updater.exe", cmd_line="updater.exe /check",
    parent_pid=700, parent_image="C:\\Windows\\System32\\services.exe",
    user="NT AUTHORITY\\SYSTEM", sha256=UPDATER_SHA,
)  # fmt: skip
PAYLOAD = ProcessEvent(
    time=T0, host="PRD01", pid=PID,
    image="C:\\Users\\pedro.gustavo\\Downloads\\invoice.exe", cmd_line="invoice.exe",
    parent_pid=3000, parent_image="C:\\Windows\\explorer.exe",
    user="pandalab\\pedro.gustavo", sha256=PAYLOAD_SHA,
)  # fmt: skip
SHELL = ProcessEvent(
    time=T0 + timedelta(seconds=10), host="PRD01", pid=5100,
    image="C:\\Windows\\System32\\cmd.exe", cmd_line="cmd.exe /c whoami /all",
    parent_pid=PID, parent_image="C:\\Users\\pedro.gustavo\\Downloads\\invoice.exe",
    user="pandalab\\pedro.gustavo",
)  # fmt: skip
CONNECTIONS = [
    NetworkConnection(time=T0 - timedelta(minutes=4), host="PRD01", pid=PID,
                      image=UPDATER.image, dst_ip=UPDATE_SERVER, dst_port=8530),
    NetworkConnection(time=T0 + timedelta(seconds=20), host="PRD01", pid=PID,
                      image=PAYLOAD.image, dst_ip=C2, dst_port=8443),
]  # fmt: skip


def _alerts() -> list[Alert]:
    return [
        alert("p1", "Suspicious Execution From Downloads Folder", Severity.HIGH,
              [("T1204.002", "execution")], pid=PID, name="invoice.exe",
              user="pandalab\\pedro.gustavo", time=T0 + timedelta(seconds=1)),
        alert("p2", "Whoami Execution By Dropped Program", Severity.MEDIUM,
              [("T1033", "discovery")], pid=5100, name="cmd.exe",
              cmd="cmd.exe /c whoami /all", user="pandalab\\pedro.gustavo",
              time=T0 + timedelta(seconds=10)),
    ]  # fmt: skip


async def _investigate(edr: FakeEdr) -> InvestigationReport:
    deps = AgentDeps(tools=read_tools(edr))
    alerts = _alerts()
    triage = await run_triage(deps, triage_input(alerts))
    return await run_investigation(
        deps, InvestigationInput(incident_id="inc-1", alerts=alerts, triage=triage)
    )


async def test_a_payload_reusing_an_earlier_processs_pid_is_judged_by_its_own_record() -> None:
    edr = FakeEdr(processes=[UPDATER, PAYLOAD, SHELL], connections=list(CONNECTIONS))
    report = await _investigate(edr)
    # the payload's contact is the attacker's; the updater's server (same pid, minutes before,
    # another process) is not, and neither is the updater's binary
    assert C2 in report.attacker_ips
    assert UPDATE_SERVER not in report.attacker_ips
    assert PAYLOAD_SHA in report.malicious_sha256
    assert UPDATER_SHA not in report.malicious_sha256


def test_an_event_with_only_a_pid_names_the_process_that_had_it_then() -> None:
    telemetry = HostTelemetry(host="PRD01", processes=[UPDATER, PAYLOAD, SHELL],
                              connections=list(CONNECTIONS))  # fmt: skip
    assert telemetry.process(PID, T0 - timedelta(minutes=1)) == UPDATER
    assert telemetry.process(PID, T0 + timedelta(minutes=1)) == PAYLOAD
    assert telemetry.process(PID, T0 - timedelta(minutes=6)) is None  # before either started
    assert telemetry.parent(SHELL) == PAYLOAD
    assert telemetry.children(UPDATER) == []
    assert [c.dst_ip for c in telemetry.connections_of(PAYLOAD)] == [C2]
    assert [c.dst_ip for c in telemetry.connections_of(UPDATER)] == [UPDATE_SERVER]
    assert ProcessKey.of(UPDATER) != ProcessKey.of(PAYLOAD)


def test_sysmons_process_guid_decides_over_the_pid_and_duplicates_are_one_process() -> None:
    base = {"event_source": "sysmon", "EventID": 1, "host": "PRD01", "ProcessId": PID,
            "Image": PAYLOAD.image, "ParentProcessId": 3000}  # fmt: skip
    first = to_process_event({**base, "@timestamp": T0.isoformat(), "ProcessGuid": "{AAAA-1}"})
    second = to_process_event(
        {**base, "@timestamp": (T0 + timedelta(minutes=1)).isoformat(), "ProcessGuid": "{bbbb-2}"}
    )
    assert first is not None and second is not None and first.guid == "aaaa-1"
    security = PAYLOAD.model_copy(update={"time": T0 + timedelta(milliseconds=5), "sha256": None})
    table = ProcessTable([first, second, security])
    # the guid names the first payload even at a time when the second one had the pid
    named = table.at(PID, T0 + timedelta(minutes=2), guid="AAAA-1")
    assert named is not None and (named.time, named.guid) == (T0, "aaaa-1")
    assert table.at(PID, T0 + timedelta(minutes=2)) == second
    # Sysmon 1 and Security 4688 of one start are one process, with the fields of both
    assert len(table.records) == 2
    assert table.records[0].cmd_line == "invoice.exe" and table.records[0].guid == "aaaa-1"


def test_an_unresolved_image_does_not_disown_a_connection() -> None:
    # Sysmon writes `<unknown process>` when it could not resolve the image: the pid still names
    # the process that had it then
    unresolved = NetworkConnection(time=T0 + timedelta(seconds=30), host="PRD01", pid=PID,
                                   image="<unknown process>", dst_ip=C2, dst_port=443)  # fmt: skip
    telemetry = HostTelemetry(host="PRD01", processes=[UPDATER, PAYLOAD], connections=[unresolved])
    assert telemetry.connections_of(PAYLOAD) == [unresolved]
