"""Persistence the attacker had a service write for it, and processes it injected into: each
small incident here goes through triage, investigation and the remediation rules, and names the
actions the spec's labelling rule expects ("isolate, plus kill_process/remove_persistence where
the artefact is known"; the block of a C2 address the attacker's code reached)."""

from __future__ import annotations

from datetime import timedelta

from agents.deps import AgentDeps
from agents.investigation.graph import run_investigation
from agents.models import InvestigationInput
from agents.persistence.artefacts import find_artefacts
from agents.persistence.attribution import Attacker
from agents.persistence.injection import injected_processes
from agents.processes import ProcessKey
from agents.remediation.graph import run_remediation
from agents.telemetry import HostTelemetry
from agents.triage.graph import run_triage
from tests.agents.fakes import T0, FakeEdr, alert, read_tools
from tests.agents.scenarios import triage_input
from tools.actions import ActionKind
from tools.edr.memory import InMemoryEdr
from tools.models import Alert, Asset, Environment, Identity, Severity
from tools.results import (
    FileEvent,
    LogonEvent,
    NetworkConnection,
    ProcessEvent,
    RegistryEvent,
    SystemEvent,
)
from tools.telemetry import Telemetry

ALICE = "corp\\alice"
ENC = "powershell.exe -nop -w hidden -enc SQBFAFgAIAAoAE4AZQB3AC0ATwBiAGoAZQBjAHQAIABOAGUAdAAuAFcA"
PAYLOAD = r"C:\Users\alice\Downloads\invoice.exe"
TASK_CACHE = r"HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion\Schedule\TaskCache\Tree"
SVCHOST = r"C:\Windows\System32\svchost.exe"


def _environment() -> Environment:
    return Environment(
        assets=[
            Asset(id="WS10", hostname="ws10.corp.example", kind="workstation",
                  criticality="medium", ips=["10.20.0.10"], owner=ALICE),
            Asset(id="WS11", hostname="ws11.corp.example", kind="workstation",
                  criticality="medium", ips=["10.20.0.11"]),
            Asset(id="WEB01", hostname="web01.corp.example", kind="server",
                  criticality="medium", ips=["10.20.0.30"]),
        ],
        identities=[Identity(id=ALICE, kind="user")],
        internal_networks=["10.20.0.0/16"],
    )  # fmt: skip


async def _plan(alerts: list[Alert], edr: FakeEdr) -> set[tuple[ActionKind, str]]:
    deps = AgentDeps(tools=read_tools(edr, _environment()))
    triage = await run_triage(deps, triage_input(alerts))
    report = await run_investigation(
        deps, InvestigationInput(incident_id="inc-1", alerts=alerts, triage=triage)
    )
    plan = await run_remediation(deps, triage, report, frozenset(ActionKind))
    return {(p.action.kind, p.action.target) for p in plan.proposals}


def _process(pid: int, image: str, cmd: str, parent: int, parent_image: str, host: str = "WS10",
             user: str = ALICE, minutes: float = -2) -> ProcessEvent:  # fmt: skip
    return ProcessEvent(time=T0 + timedelta(minutes=minutes), host=host, pid=pid, image=image,
                        cmd_line=cmd, parent_pid=parent, parent_image=parent_image,
                        user=user)  # fmt: skip


def _payload() -> ProcessEvent:
    return _process(3100, PAYLOAD, "invoice.exe", 900, r"C:\Windows\explorer.exe", minutes=-5)


def _payload_alert(**extra: object) -> Alert:
    return alert("p1", "Suspicious Execution From Downloads Folder", Severity.HIGH,
                 [("T1204.002", "execution")], host="WS10", user=ALICE, pid=3100,
                 name="invoice.exe", **extra)  # type: ignore[arg-type]  # fmt: skip


# --- scheduled tasks ---------------------------------------------------------------------------


def _task_edr(*, updater: bool = False) -> FakeEdr:
    """An attacker's powershell runs `schtasks /create`; the Task Scheduler (svchost) writes the
    task's TaskCache key and file. Optionally, Google's updater registers its task as SYSTEM."""
    create = r'schtasks.exe /create /tn "OneDrive Sync" /sc onlogon /tr "' + ENC + '"'
    edr = FakeEdr(
        processes=[
            _process(5000, r"C:\Windows\System32\WindowsPowerShell\v1.0\powershell.exe", ENC,
                     3100, PAYLOAD),
            _process(5100, r"C:\Windows\System32\schtasks.exe", create, 5000,
                     r"C:\Windows\System32\WindowsPowerShell\v1.0\powershell.exe", minutes=-1),
        ],
        registry=[
            RegistryEvent(time=T0 - timedelta(seconds=50), host="WS10", pid=1180, image=SVCHOST,
                          operation="SetValue", key=TASK_CACHE + r"\OneDrive Sync\Id",
                          user="NT AUTHORITY\\SYSTEM"),
        ],
        files=[
            FileEvent(time=T0 - timedelta(seconds=50), host="WS10", pid=1180, image=SVCHOST,
                      path=r"C:\Windows\System32\Tasks\OneDrive Sync", user="NT AUTHORITY\\SYSTEM"),
        ],
    )  # fmt: skip
    if updater:
        edr.system.append(
            SystemEvent(time=T0 - timedelta(seconds=30), host="WS10", event_id=4698,
                        user="NT AUTHORITY\\SYSTEM", name="\\GoogleUpdateTaskMachineUA",
                        command=r"C:\Program Files (x86)\Google\Update\GoogleUpdate.exe /ua "
                                "/installsource scheduler")
        )  # fmt: skip
        edr.registry.append(
            RegistryEvent(time=T0 - timedelta(seconds=30), host="WS10", pid=1180, image=SVCHOST,
                          operation="SetValue",
                          key=TASK_CACHE + r"\GoogleUpdateTaskMachineUA\Index")
        )  # fmt: skip
    return edr


def _task_alerts() -> list[Alert]:
    create = r'schtasks.exe /create /tn "OneDrive Sync" /sc onlogon /tr "' + ENC + '"'
    return [
        alert("t1", "Scheduled Task Creation Via Schtasks.EXE", Severity.MEDIUM,
              [("T1053.005", "persistence")], host="WS10", user=ALICE, pid=5100,
              name="schtasks.exe", cmd=create),
    ]  # fmt: skip


async def test_a_task_the_task_scheduler_wrote_for_the_attacker_is_removed() -> None:
    got = await _plan(_task_alerts(), _task_edr(updater=True))
    assert (ActionKind.ISOLATE_HOST, "WS10") in got
    assert (ActionKind.REMOVE_PERSISTENCE, "WS10:\\OneDrive Sync") in got
    # the updater's task registered as SYSTEM on the same host is not the attacker's
    removals = {t for k, t in got if k is ActionKind.REMOVE_PERSISTENCE}
    assert removals == {"WS10:\\OneDrive Sync"}


async def test_an_updater_registering_its_task_as_system_is_left_alone() -> None:
    updater = alert("g1", "Scheduled Task Created", Severity.LOW, [("T1053.005", "persistence")],
                    host="WS10", user="NT AUTHORITY\\SYSTEM", pid=1180, name="svchost.exe",
                    cmd=SVCHOST + " -k netsvcs -p -s Schedule")  # fmt: skip
    edr = FakeEdr(
        processes=[_process(1180, SVCHOST, SVCHOST + " -k netsvcs -p -s Schedule", 600,
                            r"C:\Windows\System32\services.exe", user="NT AUTHORITY\\SYSTEM")],
        system=_task_edr(updater=True).system,
    )  # fmt: skip
    assert await _plan([updater], edr) == set()
    # and on a host the attacker is on, the updater's task is still not an artefact
    telemetry = HostTelemetry(
        host="WS10", system=edr.system, registry=_task_edr(updater=True).registry
    )
    payload = frozenset({ProcessKey.unrecorded("WS10", 5100, None)})  # known from an alert only
    attacker = Attacker(payload, payload, frozenset({"alice"}), frozenset())
    assert find_artefacts(telemetry, attacker) == []


# --- services ----------------------------------------------------------------------------------


async def test_a_service_installed_remotely_with_the_stolen_account_is_removed() -> None:
    alerts = [
        alert("s1", "New Service Creation Using Sc.EXE", Severity.MEDIUM,
              [("T1543.003", "persistence")], host="WS10", user=ALICE, pid=6100, name="sc.exe",
              cmd=r"sc.exe \\ws11 create updsvc binPath= C:\Windows\updsvc.exe start= auto"),
        alert("s2", "Service Installed On A Remote Host", Severity.MEDIUM,
              [("T1543.003", "persistence")], host="WS11"),
    ]  # fmt: skip
    edr = FakeEdr(
        processes=[
            _process(6100, r"C:\Windows\System32\sc.exe",
                     r"sc.exe \\ws11 create updsvc binPath= C:\Windows\updsvc.exe start= auto",
                     3100, PAYLOAD, minutes=-1),
        ],
        logon_events=[
            LogonEvent(time=T0 - timedelta(seconds=40), host="WS11", user=ALICE, logon_type=3,
                       src_ip="10.20.0.10"),
        ],
        system=[
            # the System log names no installer: only the network logon before it does
            SystemEvent(time=T0 - timedelta(seconds=20), host="WS11", event_id=7045,
                        name="updsvc", command=r"C:\Windows\updsvc.exe", detail="auto start"),
        ],
    )  # fmt: skip
    got = await _plan(alerts, edr)
    assert (ActionKind.REMOVE_PERSISTENCE, "WS11:updsvc") in got
    assert (ActionKind.ISOLATE_HOST, "WS11") in got


def test_a_demand_start_service_is_remote_execution_not_persistence() -> None:
    # PsExec and smbexec run one command through a demand-start service: nothing comes back
    once = SystemEvent(time=T0, host="WS11", event_id=7045, name="PSEXESVC",
                       command=r"%SystemRoot%\PSEXESVC.exe", detail="demand start")  # fmt: skip
    attacker = Attacker(frozenset(), frozenset(), frozenset({"alice"}), frozenset())
    assert find_artefacts(HostTelemetry(host="WS11", system=[once]), attacker) == []


# --- web shells --------------------------------------------------------------------------------


async def test_a_script_the_web_server_wrote_under_its_root_is_a_web_shell() -> None:
    w3wp = r"C:\Windows\System32\inetsrv\w3wp.exe"
    pool = "IIS APPPOOL\\DefaultAppPool"
    alerts = [
        alert("w1", "Webshell Detection With Command Line Keywords", Severity.HIGH,
              [("T1505.003", "persistence")], host="WEB01", user=pool, pid=2300,
              name="cmd.exe", cmd="cmd.exe /c whoami"),
    ]  # fmt: skip
    shell = r"C:\inetpub\wwwroot\uploads\help.aspx"
    edr = FakeEdr(
        processes=[
            _process(2200, w3wp, "w3wp.exe -ap DefaultAppPool", 700, SVCHOST, host="WEB01",
                     user=pool, minutes=-30),
            _process(2300, r"C:\Windows\System32\cmd.exe", "cmd.exe /c whoami", 2200, w3wp,
                     host="WEB01", user=pool, minutes=0),
        ],
        files=[
            FileEvent(time=T0 - timedelta(minutes=1), host="WEB01", pid=2200, image=w3wp,
                      path=shell),
            FileEvent(time=T0 - timedelta(minutes=1), host="WEB01", pid=2200, image=w3wp,
                      path=r"C:\inetpub\wwwroot\uploads\photo.jpg"),
        ],
    )  # fmt: skip
    got = await _plan(alerts, edr)
    assert (ActionKind.ISOLATE_HOST, "WEB01") in got
    assert (ActionKind.REMOVE_PERSISTENCE, f"WEB01:{shell}") in got
    assert {t for k, t in got if k is ActionKind.REMOVE_PERSISTENCE} == {f"WEB01:{shell}"}


def test_a_deployment_of_many_pages_is_not_a_web_shell() -> None:
    writes = [
        FileEvent(time=T0, host="WEB01", pid=2200, image="w3wp.exe",
                  path=rf"C:\inetpub\wwwroot\app\page{i}.aspx")
        for i in range(12)
    ]  # fmt: skip
    attacker = Attacker(frozenset(), frozenset(), frozenset(), frozenset())
    assert find_artefacts(HostTelemetry(host="WEB01", files=writes), attacker) == []


# --- WMI ---------------------------------------------------------------------------------------


async def test_a_wmi_subscription_running_an_encoded_command_is_removed() -> None:
    alerts = [
        _payload_alert(),
        alert("m1", "WMI Event Subscription", Severity.MEDIUM, [("T1546.003", "persistence")],
              host="WS10", user=ALICE),
    ]  # fmt: skip
    edr = FakeEdr(
        processes=[_payload()],
        system=[
            SystemEvent(time=T0 - timedelta(seconds=5), host="WS10", event_id=19, user=ALICE,
                        name="Updater", command="SELECT * FROM __InstanceModificationEvent"),
            SystemEvent(time=T0 - timedelta(seconds=4), host="WS10", event_id=20, user=ALICE,
                        name='CommandLineEventConsumer.Name="Updater"', command=ENC,
                        detail="Command Line"),
            SystemEvent(time=T0 - timedelta(seconds=3), host="WS10", event_id=21, user=ALICE,
                        name='CommandLineEventConsumer.Name="Updater"',
                        detail='__EventFilter.Name="Updater"'),
        ],
    )  # fmt: skip
    got = await _plan(alerts, edr)
    assert (ActionKind.REMOVE_PERSISTENCE, 'WS10:CommandLineEventConsumer.Name="Updater"') in got


# --- kills and injected processes -----------------------------------------------------------


async def test_the_known_payload_of_a_host_being_isolated_is_killed_too() -> None:
    auditpol = "auditpol.exe /clear /y"
    alerts = [
        _payload_alert(),
        alert("p2", "Audit Policy Tampering Via Auditpol", Severity.HIGH,
              [("T1562.002", "defense-evasion")], host="WS10", user=ALICE, pid=3300,
              name="auditpol.exe", cmd=auditpol),
    ]  # fmt: skip
    edr = FakeEdr(
        processes=[
            _payload(),
            _process(3300, r"C:\Windows\System32\auditpol.exe", auditpol, 3100, PAYLOAD),
        ],
        connections=[
            NetworkConnection(time=T0 - timedelta(minutes=4), host="WS10", pid=3100,
                              image=PAYLOAD, src_ip="10.20.0.10", dst_ip="198.51.100.7",
                              dst_port=8443),
        ],
    )  # fmt: skip
    got = await _plan(alerts, edr)
    assert (ActionKind.ISOLATE_HOST, "WS10") in got
    # the implant that talks to the attacker is killed; the one-shot tool it ran is contained
    assert {t for k, t in got if k is ActionKind.KILL_PROCESS} == {"WS10:3100"}


async def test_a_process_the_payload_injected_into_is_the_attackers() -> None:
    notepad = _process(4400, r"C:\Windows\System32\notepad.exe", "notepad.exe", 900,
                       r"C:\Windows\explorer.exe", minutes=-20)  # fmt: skip
    alerts = [
        alert("c1", "Suspicious Process Beaconing", Severity.HIGH,
              [("T1071.001", "command-and-control")], host="WS10", user=ALICE, pid=3100,
              name="invoice.exe"),
    ]  # fmt: skip
    edr = FakeEdr(
        processes=[_payload(), notepad],
        connections=[
            NetworkConnection(time=T0 - timedelta(minutes=1), host="WS10", pid=4400,
                              image=notepad.image, src_ip="10.20.0.10", dst_ip="198.51.100.7",
                              dst_port=443),
        ],
        system=[
            SystemEvent(time=T0 - timedelta(minutes=3), host="WS10", event_id=8, pid=3100,
                        image=PAYLOAD, target_pid=4400, target_image=notepad.image),
        ],
    )  # fmt: skip
    got = await _plan(alerts, edr)
    assert (ActionKind.BLOCK_IP, "198.51.100.7") in got
    # raised as injection (defense evasion), the injected process is killed with the isolation
    injection = alert("c2", "CreateRemoteThread Into Notepad", Severity.HIGH,
                      [("T1055.001", "defense-evasion")], host="WS10", user=ALICE, pid=3100,
                      name="invoice.exe")  # fmt: skip
    got = await _plan([injection], edr)
    assert (ActionKind.ISOLATE_HOST, "WS10") in got
    assert (ActionKind.KILL_PROCESS, "WS10:4400") in got


def test_injection_needs_the_rights_to_write_and_run_code() -> None:
    def access(rights: str, target: str = r"C:\Windows\System32\notepad.exe") -> SystemEvent:
        return SystemEvent(time=T0, host="WS10", event_id=10, pid=3100, image=PAYLOAD,
                           target_pid=4400, target_image=target, access=rights)  # fmt: skip

    def injected(*events: SystemEvent) -> set[int]:
        telemetry = HostTelemetry(host="WS10", system=list(events))
        payload = {ProcessKey.unrecorded("WS10", 3100, PAYLOAD)}
        return {key.pid for key in injected_processes(telemetry, payload)}

    assert injected(access("0x1fffff")) == {4400}
    assert injected(access("0x143A")) == {4400}
    assert injected(access("0x1010")) == set()  # reading memory, as credential dumpers do
    assert injected(access("0x1fffff", r"C:\Windows\System32\lsass.exe")) == set()


def test_the_readers_see_task_service_wmi_and_injection_records() -> None:
    raw = [
        {"@timestamp": "2024-01-01T00:00:00Z", "host": "WS10", "event_source": "security",
         "EventID": 4698, "TaskName": "\\OneDrive Sync", "SubjectUserName": "alice",
         "SubjectDomainName": "CORP", "ClientProcessId": "5100",
         "TaskContent": "<Task><Actions><Exec><Command>powershell.exe</Command>"
                        "<Arguments>-enc AAAA</Arguments></Exec></Actions></Task>"},
        {"@timestamp": "2024-01-01T00:00:01Z", "host": "WS11", "event_source": "system",
         "EventID": 7045, "ServiceName": "updsvc", "ImagePath": "C:\\Windows\\updsvc.exe",
         "StartType": "auto start"},
        {"@timestamp": "2024-01-01T00:00:02Z", "host": "WS10", "event_source": "sysmon",
         "EventID": 20, "Operation": "Created", "User": "CORP\\alice", "Name": "Updater",
         "Type": "Command Line", "Destination": "cmd.exe /c calc"},
        {"@timestamp": "2024-01-01T00:00:03Z", "host": "WS10", "event_source": "sysmon",
         "EventID": 10, "SourceProcessId": "3100", "SourceImage": PAYLOAD,
         "TargetProcessId": "4400", "TargetImage": "notepad.exe", "GrantedAccess": "0x1fffff"},
    ]  # fmt: skip
    events = Telemetry.from_events(raw).system
    assert [(e.event_id, e.name) for e in events] == [
        (4698, "\\OneDrive Sync"),
        (7045, "updsvc"),
        (20, 'CommandLineEventConsumer.Name="Updater"'),
        (10, None),
    ]
    assert events[0].command == "powershell.exe -enc AAAA"
    assert (events[0].pid, events[0].user) == (5100, "CORP\\alice")
    assert events[1].detail == "auto start"
    assert (events[3].pid, events[3].target_pid, events[3].access) == (3100, 4400, "0x1fffff")


async def test_the_edr_twin_answers_system_events_per_host() -> None:
    raw = [
        {"@timestamp": "2024-01-01T00:00:01Z", "host": "WS11", "event_source": "system",
         "EventID": 7045, "ServiceName": "updsvc", "ImagePath": "C:\\Windows\\updsvc.exe",
         "StartType": "auto start"},
        {"@timestamp": "2024-01-01T00:00:02Z", "host": "WS10", "event_source": "sysmon",
         "EventID": 8, "SourceProcessId": "3100", "SourceImage": PAYLOAD,
         "TargetProcessId": "4400", "TargetImage": "notepad.exe"},
    ]  # fmt: skip
    edr = InMemoryEdr(_environment(), raw)
    assert [e.name for e in await edr.system_events("WS11")] == ["updsvc"]
    assert [e.target_pid for e in await edr.system_events("ws10.corp.example")] == [4400]
