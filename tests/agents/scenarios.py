"""Hand-made incidents for agent and playbook tests."""

from __future__ import annotations

from datetime import timedelta

from agents.models import TriageInput
from tests.agents.fakes import T0, FakeEdr, alert
from tools.models import Alert, Severity
from tools.results import LogonEvent, NetworkConnection, ProcessEvent

COMSVCS = r"rundll32.exe C:\windows\System32\comsvcs.dll, MiniDump 624 C:\lsass.dmp full"


def lsass_alerts() -> list[Alert]:
    return [
        alert("a1", "Lsass Memory Dump via Comsvcs DLL", Severity.HIGH,
              [("T1003.001", "credential-access")], user="pandalab\\pedro.gustavo",
              pid=4242, name="rundll32.exe", cmd=COMSVCS),
        alert("a2", "Suspicious Execution of Systeminfo", Severity.LOW,
              [("T1082", "discovery")], user="pandalab\\pedro.gustavo", pid=4300,
              name="systeminfo.exe", cmd="systeminfo", time=T0 - timedelta(minutes=2)),
    ]  # fmt: skip


def lsass_edr() -> FakeEdr:
    return FakeEdr(
        processes=[
            ProcessEvent(time=T0 - timedelta(minutes=3), host="PRD01", pid=3100,
                         image=r"C:\Users\pedro\Downloads\invoice.exe", cmd_line="invoice.exe",
                         parent_pid=900, parent_image=r"C:\Windows\explorer.exe",
                         user="PANDALAB\\pedro.gustavo"),
            ProcessEvent(time=T0 - timedelta(minutes=1), host="PRD01", pid=4100,
                         image=r"C:\Windows\System32\cmd.exe", cmd_line="cmd.exe",
                         parent_pid=3100, parent_image=r"C:\Users\pedro\Downloads\invoice.exe",
                         user="PANDALAB\\pedro.gustavo"),
            ProcessEvent(time=T0, host="PRD01", pid=4242,
                         image=r"C:\Windows\System32\rundll32.exe", cmd_line=COMSVCS,
                         parent_pid=4100, parent_image=r"C:\Windows\System32\cmd.exe",
                         user="PANDALAB\\pedro.gustavo"),
        ],
        connections=[
            NetworkConnection(time=T0 - timedelta(minutes=3), host="PRD01", pid=3100,
                              image=r"C:\Users\pedro\Downloads\invoice.exe",
                              src_ip="172.18.39.6", dst_ip="10.0.5.13", dst_port=443),
        ],
    )  # fmt: skip


def update_alerts() -> list[Alert]:
    cmd = r"C:\Windows\system32\svchost.exe -k netsvcs -p -s wuauserv"
    return [
        alert("u1", "Scheduled Task Created - Registry", Severity.LOW,
              [("T1053.005", "persistence")], rule_uid="93ff0ceb-e0ef-4586-8cd8-a6c277d738e3",
              user="NT AUTHORITY\\SYSTEM", pid=1200, name="svchost.exe", cmd=cmd),
        alert("u2", "Uncommon Process Access Rights For Target Image", Severity.LOW,
              [("T1055.011", "defense-evasion")], rule_uid="a24e5861-c6ca-4fde-a93c-ba9256feddf0",
              user="NT AUTHORITY\\SYSTEM", pid=1200, name="svchost.exe", cmd=cmd),
    ]  # fmt: skip


def update_edr() -> FakeEdr:
    return FakeEdr(
        processes=[
            ProcessEvent(time=T0, host="PRD01", pid=1200,
                         image=r"C:\Windows\System32\svchost.exe",
                         cmd_line=r"C:\Windows\system32\svchost.exe -k netsvcs -p -s wuauserv",
                         parent_pid=600, parent_image=r"C:\Windows\System32\services.exe",
                         user="NT AUTHORITY\\SYSTEM"),
        ]
    )  # fmt: skip


def triage_input(alerts: list[Alert], incident: str = "inc-1") -> TriageInput:
    return TriageInput(incident_id=incident, alerts=alerts)


def dcsync_alerts() -> list[Alert]:
    """A domain controller records pedro's account replicating its directory (DCSync)."""
    return [
        alert("r1", "AD Replication from Non Machine Account", Severity.HIGH,
              [("T1003.006", "credential-access")], host="DC01",
              user="pandalab\\pedro.gustavo"),
    ]  # fmt: skip


def dcsync_edr() -> FakeEdr:
    """pedro's network logon on the DC came from PRD01."""
    return FakeEdr(
        logon_events=[
            LogonEvent(time=T0 - timedelta(seconds=5), host="DC01", logon_type=3,
                       user="PANDALAB\\pedro.gustavo", src_ip="172.18.39.6"),
        ]
    )  # fmt: skip
