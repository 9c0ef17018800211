"""The world every contract suite runs in: a small recorded environment and its telemetry, the
same for every implementation (a twin is seeded with it directly, an emulator through its API).

Events are modelled on real OTRF lines (LSASS_campaign_03, PRD01.pandalab.com) in the flat
recorded-incident shape, plus one Zeek connection seen by a network sensor (host null).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from tools.journal import TwinFaults
from tools.models import Asset, AssetKind, Criticality, Environment, Identity, IdentityKind

PEDRO = "pandalab\\pedro.gustavo"
ADMIN = "pandalab\\da.admin"
RUNDLL_PID = 4242
RUNDLL_SHA256 = "14fb2362d0f317107d91424b35d37c1ffd7b8c0c86158ba173b15d77d1200770"
C2_IP = "203.0.113.7"
STARTUP_FILE = (
    "C:\\Users\\pedro.gustavo\\AppData\\Roaming\\Microsoft\\Windows\\Start Menu\\Programs"
    "\\Startup\\u.lnk"
)


def environment() -> Environment:
    return Environment(
        assets=[
            Asset(
                id="PRD01",
                hostname="PRD01.pandalab.com",
                kind=AssetKind.WORKSTATION,
                criticality=Criticality.MEDIUM,
                ips=["172.18.39.6"],
                os="windows",
                owner=PEDRO,
            ),
            Asset(
                id="MORDORDC",
                hostname="MORDORDC.pandalab.com",
                kind=AssetKind.DOMAIN_CONTROLLER,
                criticality=Criticality.CRITICAL,
                ips=["198.51.100.10"],  # outside the internal networks, still an asset
                os="windows",
            ),
        ],
        identities=[
            Identity(id=PEDRO, kind=IdentityKind.USER),
            Identity(id=ADMIN, kind=IdentityKind.ADMIN, privileged=True),
        ],
        internal_networks=["172.18.0.0/16", "10.0.0.0/8"],
        protected=["MORDORDC"],
    )


def _sysmon(event_id: int, at: str, **fields: Any) -> dict[str, Any]:
    return {
        "@timestamp": at,
        "host": "PRD01",
        "event_source": "sysmon",
        "Channel": "Microsoft-Windows-Sysmon/Operational",
        "Hostname": "PRD01.pandalab.com",
        "EventID": event_id,
        **fields,
    }


def _security(event_id: int, at: str, **fields: Any) -> dict[str, Any]:
    return {
        "@timestamp": at,
        "host": "PRD01",
        "event_source": "security",
        "Channel": "Security",
        "Hostname": "PRD01.pandalab.com",
        "EventID": event_id,
        **fields,
    }


def events() -> list[dict[str, Any]]:
    """Deliberately out of time order: readers must sort."""
    return [
        _sysmon(
            1,
            "2023-08-18T08:56:50.227Z",
            ProcessId=str(RUNDLL_PID),
            Image="C:\\Windows\\System32\\rundll32.exe",
            CommandLine="rundll32.exe comsvcs.dll, MiniDump 624 C:\\l.dmp full",
            ParentProcessId="5100",
            ParentImage="C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe",
            User="PANDALAB\\pedro.gustavo",
            Hashes=f"SHA1=5CC5DB09,MD5=74A01947,SHA256={RUNDLL_SHA256.upper()},IMPHASH=37D1",
        ),
        _security(
            4688,
            "2023-08-18T08:56:04.315Z",
            NewProcessId="0x1a2",
            NewProcessName="C:\\Windows\\System32\\whoami.exe",
            ProcessId="0x13ec",
            ParentProcessName="C:\\Windows\\System32\\cmd.exe",
            CommandLine="whoami /all",
            SubjectUserName="pedro.gustavo",
            SubjectDomainName="PANDALAB",
            TargetUserName="-",
            TargetDomainName="-",
        ),
        _sysmon(
            3,
            "2023-08-18T08:56:55.000Z",
            ProcessId=str(RUNDLL_PID),
            Image="C:\\Windows\\System32\\rundll32.exe",
            Protocol="tcp",
            SourceIp="172.18.39.6",
            SourcePort="52320",
            DestinationIp="10.0.5.13",
            DestinationPort="443",
            DestinationHostname="-",
        ),
        {
            "@timestamp": "2023-08-18T08:57:10.000Z",
            "host": None,
            "event_source": "zeek_conn",
            "ts": 1692349030.0,
            "uid": "CxXuuz2ent30eBGjwc",
            "id.orig_h": "172.18.39.6",
            "id.orig_p": 49812,
            "id.resp_h": C2_IP,
            "id.resp_p": 8443,
            "proto": "tcp",
        },
        _sysmon(
            13,
            "2023-08-18T08:57:20.000Z",
            EventType="SetValue",
            ProcessId=str(RUNDLL_PID),
            Image="C:\\Windows\\System32\\rundll32.exe",
            TargetObject="HKLM\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Run\\Updater",
            Details="C:\\Users\\Public\\u.exe",
        ),
        _sysmon(
            12,
            "2023-08-18T08:57:05.000Z",
            EventType="CreateKey",
            ProcessId="612",
            Image="C:\\Windows\\system32\\services.exe",
            TargetObject="\\REGISTRY\\MACHINE\\SYSTEM\\CurrentControlSet\\Services\\updsvc",
        ),
        _sysmon(
            11,
            "2023-08-18T08:57:30.000Z",
            ProcessId=str(RUNDLL_PID),
            Image="C:\\Windows\\System32\\rundll32.exe",
            TargetFilename=STARTUP_FILE,
        ),
        _security(
            4624,
            "2023-08-18T08:55:00.000Z",
            TargetUserName="pedro.gustavo",
            TargetDomainName="PANDALAB",
            LogonType="2",
            IpAddress="127.0.0.1",
        ),
        _security(
            4625,
            "2023-08-18T08:56:44.242Z",
            TargetUserName="pedro.gustavo",
            TargetDomainName="PANDALAB",
            LogonType="11",
            IpAddress="::1",
        ),
    ]


@dataclass(frozen=True)
class Scenario:
    """What a factory seeds its implementation with. `faults` names operations to fail
    transiently (an emulator factory translates them into its own fault knobs)."""

    environment: Environment = field(default_factory=environment)
    events: list[dict[str, Any]] = field(default_factory=events)
    faults: TwinFaults | None = None


T = TypeVar("T")


@dataclass(frozen=True)
class Harness(Generic[T]):
    """An implementation under contract, and a count of the state changes the vendor recorded
    (the twins' journal, an emulator's audit log), so repeats can be shown to change nothing."""

    tool: T
    state_changes: Callable[[], int]


Factory = Callable[[Scenario], AbstractAsyncContextManager[Harness[T]]]


# --- system events ----------------------------------------------------------------------------

WHOAMI_PID = 0x1A2  # started in `events()`: the process the rundll32 implant reaches into
TASK_NAME = "\\Microsoft\\Windows\\Updater"
TASK_COMMAND = "C:\\Users\\Public\\u.exe -k run"
SERVICE_IMAGE = "C:\\Users\\Public\\updsvc.exe"
CONSUMER = '\\\\.\\root\\subscription:CommandLineEventConsumer.Name="upd"'
FILTER = '\\\\.\\root\\subscription:__EventFilter.Name="upd"'
CALL_TRACE = "C:\\Windows\\SYSTEM32\\ntdll.dll+9c534|UNKNOWN(00007FFF31F61C82)"


def _system(event_id: int, at: str, **fields: Any) -> dict[str, Any]:
    return {
        "@timestamp": at,
        "host": "PRD01",
        "event_source": "system",
        "Channel": "System",
        "SourceName": "Service Control Manager",
        "Hostname": "PRD01.pandalab.com",
        "EventID": event_id,
        **fields,
    }


def system_events() -> list[dict[str, Any]]:
    """A task registered and a service installed by the implant's user, a thread created in and a
    handle opened to another process, a WMI consumer and its binding; out of time order."""
    task = (
        '<?xml version="1.0" encoding="UTF-16"?><Task><Actions Context="Author"><Exec>'
        "<Command>C:\\Users\\Public\\u.exe</Command><Arguments>-k run</Arguments>"
        "</Exec></Actions></Task>"
    )
    return [
        _sysmon(
            8,
            "2023-08-18T08:58:10.000Z",
            SourceProcessId=str(RUNDLL_PID),
            SourceImage="C:\\Windows\\System32\\rundll32.exe",
            TargetProcessId=str(WHOAMI_PID),
            TargetImage="C:\\Windows\\System32\\whoami.exe",
        ),
        _security(
            4698,
            "2023-08-18T08:58:00.000Z",
            SubjectUserName="pedro.gustavo",
            SubjectDomainName="PANDALAB",
            ClientProcessId=str(RUNDLL_PID),
            TaskName=TASK_NAME,
            TaskContent=task,
        ),
        _system(
            7045,
            "2023-08-18T08:58:05.000Z",
            ServiceName="updsvc",
            ImagePath=SERVICE_IMAGE,
            StartType="auto start",
        ),
        _sysmon(
            10,
            "2023-08-18T08:58:09.000Z",
            SourceProcessId=str(RUNDLL_PID),
            SourceImage="C:\\Windows\\System32\\rundll32.exe",
            TargetProcessId=str(WHOAMI_PID),
            TargetImage="C:\\Windows\\System32\\whoami.exe",
            GrantedAccess="0x1fffff",
            CallTrace=CALL_TRACE,
        ),
        _sysmon(
            20,
            "2023-08-18T08:58:20.000Z",
            Operation="Created",
            User="PANDALAB\\pedro.gustavo",
            Name='"upd"',
            Type="Command Line",
            Destination="C:\\Users\\Public\\u.exe",
        ),
        _sysmon(
            21,
            "2023-08-18T08:58:21.000Z",
            Operation="Created",
            User="PANDALAB\\pedro.gustavo",
            Consumer=CONSUMER,
            Filter=FILTER,
        ),
    ]
