"""Discovery by an implant whose own start the recording does not hold.

An implant usually starts long before the enumeration it runs, so a recording cut around the
alerts holds the enumerating child (`net user`, `sc \\\\host query`) but not its parent's start:
only the child's Sysmon record says what the parent is (ParentImage, ParentCommandLine). Each
small recording here goes from raw events through the in-memory twins (as a replay does), triage,
investigation and the remediation rules: the implant's enumeration is malicious discovery, a
ticket and no containment (the spec's labelling rule); an admin's own enumeration from an
interactive shell stays benign."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from agents.deps import AgentDeps
from agents.investigation.graph import run_investigation
from agents.models import InvestigationInput
from agents.remediation.graph import run_remediation
from agents.triage.graph import run_triage
from simulations.backends import memory_backends
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
    ProcessRef,
    Severity,
    Verdict,
)
from tools.results import ProcessEvent

HOST = "WS20.corp.example"
BOB = "CORP\\bob"
ENCODED = (
    '"C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe" -nop -w 1 -enc '
    "SQBFAFgAIAAoAE4AZQB3AC0ATwBiAGoAZQBjAHQAIABOAGUAdAAuAFcAZQBiAEMAbABpAGUAbgB0ACkA"
)
INTERACTIVE = '"C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe"'
POWERSHELL = "C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe"
NET_RULE = "183e7ea8-ac4b-4c23-9aec-b3dac4e401ac"  # Net.EXE Execution, a hunting rule
SC_RULE = "57712d7a-679c-4a41-a913-87e7175ae429"  # SC.EXE Query Execution, a hunting rule


def _environment() -> Environment:
    return Environment(
        assets=[
            Asset(id="WS20", hostname=HOST, kind=AssetKind.WORKSTATION,
                  criticality=Criticality.MEDIUM, ips=["10.30.0.20"], owner=BOB),
            Asset(id="DC02", hostname="dc02.corp.example", kind=AssetKind.DOMAIN_CONTROLLER,
                  criticality=Criticality.HIGH, ips=["10.30.0.2"]),
        ],
        identities=[Identity(id=BOB, kind=IdentityKind.USER)],
        internal_networks=["10.30.0.0/16"],
    )  # fmt: skip


def _sysmon_1(
    at: float, pid: int, image: str, cmd: str, parent_pid: int, parent_image: str, parent_cmd: str
) -> dict[str, Any]:
    """A Sysmon process creation as the recordings hold it: the parent named only here."""
    return {
        "Channel": "Microsoft-Windows-Sysmon/Operational",
        "EventID": 1,
        "Hostname": HOST,
        "@timestamp": (T0 + timedelta(seconds=at)).isoformat().replace("+00:00", "Z"),
        "ProcessId": str(pid),
        "Image": image,
        "CommandLine": cmd,
        "User": BOB,
        "ParentProcessId": str(parent_pid),
        "ParentImage": parent_image,
        "ParentCommandLine": parent_cmd,
    }


def _net_user(parent_cmd: str) -> list[dict[str, Any]]:
    net = "C:\\Windows\\System32\\net.exe"
    return [
        _sysmon_1(0, 5416, net, '"C:\\Windows\\system32\\net.exe" user', 7456, POWERSHELL,
                  parent_cmd),
        _sysmon_1(0.02, 7924, "C:\\Windows\\System32\\net1.exe", "C:\\Windows\\system32\\net1 user",
                  5416, net, '"C:\\Windows\\system32\\net.exe" user'),
    ]  # fmt: skip


def _net_alerts() -> list[Alert]:
    return [
        alert("n1", "Net.EXE Execution", Severity.LOW, [("T1087.001", "discovery")], host=HOST,
              user=BOB, name="net.exe", cmd='"C:\\Windows\\system32\\net.exe" user',
              rule_uid=NET_RULE),
        alert("n2", "Net.EXE Execution", Severity.LOW, [("T1087.001", "discovery")], host=HOST,
              user=BOB, name="net1.exe", cmd="C:\\Windows\\system32\\net1 user", rule_uid=NET_RULE,
              time=T0 + timedelta(seconds=0.02)),
    ]  # fmt: skip


async def _outcome(
    alerts: list[Alert], events: list[dict[str, Any]]
) -> tuple[Verdict, Category, list[str]]:
    tools, _ = memory_backends(_environment(), events)
    deps = AgentDeps(tools=tools)
    triage = await run_triage(deps, triage_input(alerts))
    report = await run_investigation(
        deps, InvestigationInput(incident_id="inc-1", alerts=alerts, triage=triage)
    )
    plan = await run_remediation(deps, triage, report, SCORED_KINDS)
    proposed = [f"{p.action.kind.value}:{p.action.target}" for p in plan.proposals]
    return report.verdict, triage.category, proposed


async def test_enumeration_under_an_encoded_powershell_started_before_the_recording() -> None:
    verdict, category, proposed = await _outcome(_net_alerts(), _net_user(ENCODED))
    assert (verdict, category) == (Verdict.MALICIOUS, Category.DISCOVERY)
    assert proposed == []  # discovery only: a ticket, no containment


async def test_an_admins_enumeration_from_an_interactive_shell_stays_benign() -> None:
    verdict, _, proposed = await _outcome(_net_alerts(), _net_user(INTERACTIVE))
    assert verdict is Verdict.BENIGN
    assert proposed == []


async def test_remote_service_query_through_a_shell_of_a_tool_run_from_the_desktop() -> None:
    cmd = "C:\\Windows\\System32\\cmd.exe"
    query = "sc.exe \\\\dc02.corp.example query IKEEXT"

    def events(tool: str) -> list[dict[str, Any]]:
        return [
            _sysmon_1(0, 6960, cmd, f'"cmd.exe" /c {query}', 2064, tool, f'"{tool}" '),
            _sysmon_1(0.01, 3108, "C:\\Windows\\System32\\sc.exe", query, 6960, cmd,
                      f'"cmd.exe" /c {query}'),
        ]  # fmt: skip

    alerts = [
        alert("s1", "SC.EXE Query Execution", Severity.LOW, [("T1007", "discovery")], host=HOST,
              user=BOB, pid=3108, name="sc.exe", cmd=query, rule_uid=SC_RULE,
              time=T0 + timedelta(seconds=0.01)),
    ]  # fmt: skip
    implant = await _outcome(alerts, events("C:\\Users\\bob\\Desktop\\updater.exe"))
    assert implant == (Verdict.MALICIOUS, Category.DISCOVERY, [])
    admin = await _outcome(alerts, events("C:\\Windows\\explorer.exe"))
    assert admin[0] is Verdict.BENIGN


def _ldap_contact(at: float, image: str) -> dict[str, Any]:
    """A Sysmon network connection of a process the recording has no start of: LDAP to the DC."""
    return {
        "Channel": "Microsoft-Windows-Sysmon/Operational",
        "EventID": 3,
        "Hostname": HOST,
        "@timestamp": (T0 + timedelta(seconds=at)).isoformat().replace("+00:00", "Z"),
        "Image": image,
        "User": BOB,
        "Protocol": "tcp",
        "Initiated": "true",
        "SourceIp": "10.30.0.20",
        "SourcePort": "50112",
        "DestinationIp": "10.30.0.2",
        "DestinationPort": "389",
    }


async def test_a_directory_query_by_a_tool_run_from_the_desktop_is_discovery_not_c2() -> None:
    """The ADSI schema cache is written when a program binds to LDAP: an alert on it (tagged as
    a C2 technique by its rule) saw enumeration. A tool run from the Desktop that queried the
    directory is an implant's discovery (a ticket, no block, no isolation); an installed
    program's query stays benign."""
    cache = "C:\\Users\\bob\\AppData\\Local\\Microsoft\\Windows\\SchCache\\corp.example.sch"

    def outcome(image: str) -> Any:
        c2_tag = [("T1001.003", "command-and-control")]
        adsi = alert(
            "a1", "ADSI-Cache File Creation By Uncommon Tool", Severity.MEDIUM, c2_tag, host=HOST,
            file_path=cache,
        )  # fmt: skip
        # the detection names the process by its file only (no pid, no command line)
        named = ProcessRef(name=image.rsplit("\\", 1)[-1])
        entities = adsi.entities.model_copy(update={"process": named})
        alerts = [adsi.model_copy(update={"entities": entities})]
        return _outcome(alerts, [_ldap_contact(-0.5, image), _ldap_contact(0.3, image)])

    implant = await outcome("C:\\Users\\bob\\Desktop\\report.exe")
    assert implant == (Verdict.MALICIOUS, Category.DISCOVERY, [])
    installed = await outcome("C:\\Program Files\\Inventory\\collector.exe")
    assert installed[0] is Verdict.BENIGN


async def test_a_vendor_read_without_the_parents_record_still_names_the_implant() -> None:
    """A live EDR read covers a window around the alerts: the implant started hours before, so
    only its child is read, with what the vendor says of the parent (Defender's
    InitiatingProcessCommandLine, Sysmon's ParentCommandLine). That is enough."""
    child = ProcessEvent(
        time=T0, host="WS20", pid=5416, image="C:\\Windows\\System32\\net.exe",
        cmd_line='"C:\\Windows\\system32\\net.exe" user', parent_pid=7456,
        parent_image=POWERSHELL, parent_cmd_line=ENCODED, user=BOB,
    )  # fmt: skip
    alerts = [a.model_copy(update={"entities": a.entities.model_copy(update={"host": "WS20"})})
              for a in _net_alerts()[:1]]  # fmt: skip
    deps = AgentDeps(tools=read_tools(FakeEdr(processes=[child]), _environment()))
    result = await run_triage(deps, triage_input(alerts))
    assert (result.verdict, result.category) == (Verdict.MALICIOUS, Category.DISCOVERY)
    plain = child.model_copy(update={"parent_cmd_line": INTERACTIVE})
    deps = AgentDeps(tools=read_tools(FakeEdr(processes=[plain]), _environment()))
    assert (await run_triage(deps, triage_input(alerts))).verdict is Verdict.BENIGN
