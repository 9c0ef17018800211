"""The declared operators' routine work (`agents/triage/operators.py`): remote execution by an
inventory admin account from a server is administration; the same alerts from a workstation, by
a plain user's account, or with a credential dump in the account's commands stay malicious.

Each small recording (PsExec's service run on a server, after the account's network logon) goes
from raw events through the in-memory twins, triage, investigation and the remediation rules."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from agents.deps import AgentDeps
from agents.investigation.graph import run_investigation
from agents.models import InvestigationInput
from agents.remediation.graph import run_remediation
from agents.triage.graph import run_triage
from simulations.backends import memory_backends
from tests.agents.fakes import T0, alert
from tests.agents.scenarios import triage_input
from tools.actions import SCORED_KINDS
from tools.models import (
    Alert,
    Asset,
    AssetKind,
    Criticality,
    Environment,
    Identity,
    IdentityKind,
    Severity,
    Verdict,
)

TARGET = "APP9.corp.example"
ADMIN = "CORP\\ops.admin"
USER = "CORP\\kim"
JUMP_IP, WORKSTATION_IP = "10.40.0.9", "10.40.2.9"
PSEXESVC = "C:\\Windows\\PSEXESVC.exe"
CMD = "C:\\Windows\\System32\\cmd.exe"
ROUTINE = 'cmd /c "gpupdate /force"'
HIVE_DUMP = "cmd /c reg save hklm\\sam C:\\Windows\\Temp\\s.hiv"


def _environment() -> Environment:
    def server(name: str, ip: str, kind: AssetKind = AssetKind.SERVER) -> Asset:
        return Asset(id=name, hostname=f"{name.lower()}.corp.example", kind=kind,
                     criticality=Criticality.HIGH, ips=[ip])  # fmt: skip

    return Environment(
        assets=[
            server("JUMP9", JUMP_IP),
            server("APP9", "10.40.1.9"),
            server("WS9", WORKSTATION_IP, AssetKind.WORKSTATION),
        ],
        identities=[
            Identity(id=ADMIN.lower(), kind=IdentityKind.ADMIN, privileged=True),
            Identity(id=USER.lower(), kind=IdentityKind.USER),
        ],
        internal_networks=["10.40.0.0/16"],
    )


def _stamp(at: float) -> str:
    return (T0 + timedelta(seconds=at)).isoformat().replace("+00:00", "Z")


def _events(user: str, source: str, cmd: str) -> list[dict[str, Any]]:
    """The account's network logon on APP9, PsExec's service, and the command it runs."""
    name = user.split("\\")[1]
    logon = {
        "Channel": "Security", "EventID": 4624, "Hostname": TARGET, "@timestamp": _stamp(-2),
        "LogonType": "3", "TargetUserName": name, "TargetDomainName": "CORP",
        "IpAddress": source, "AuthenticationPackageName": "Kerberos",
    }  # fmt: skip

    def sysmon_1(at: float, pid: int, image: str, line: str, ppid: int, parent: str,
                 account: str) -> dict[str, Any]:  # fmt: skip
        return {
            "Channel": "Microsoft-Windows-Sysmon/Operational", "EventID": 1,
            "Hostname": TARGET, "@timestamp": _stamp(at), "ProcessId": str(pid), "Image": image,
            "CommandLine": line, "User": account, "ParentProcessId": str(ppid),
            "ParentImage": parent, "ParentCommandLine": parent,
        }  # fmt: skip

    return [
        logon,
        sysmon_1(0, 2964, PSEXESVC, PSEXESVC, 712, "C:\\Windows\\System32\\services.exe",
                 "NT AUTHORITY\\SYSTEM"),
        sysmon_1(0.5, 5032, CMD, cmd, 2964, PSEXESVC, user),
    ]  # fmt: skip


def _alerts(user: str, source: str, cmd: str) -> list[Alert]:
    return [
        alert("p1", "PsExec Service Execution", Severity.MEDIUM, [("T1569.002", "execution")],
              host=TARGET, user="NT AUTHORITY\\SYSTEM", pid=2964, name="PSEXESVC.exe",
              cmd=PSEXESVC, rule_uid="fdfcbd78-48f1-4a4b-90ac-d82241e368c5"),
        alert("p2", "Remote Service Activity via SVCCTL Named Pipe", Severity.MEDIUM,
              [("T1021.002", "lateral-movement")], host=TARGET, user=user, src_ip=source,
              rule_uid="586a8d6b-6bfe-4ad9-9d78-888cd2fe50c3", time=T0 - timedelta(seconds=1)),
        alert("p3", "PsExec Service Child Process", Severity.MEDIUM,
              [("T1569.002", "execution")], host=TARGET, user=user, pid=5032, name="cmd.exe",
              cmd=cmd, time=T0 + timedelta(seconds=0.5)),
    ]  # fmt: skip


async def _outcome(user: str, source: str, cmd: str) -> tuple[Verdict, list[str], list[str]]:
    alerts = _alerts(user, source, cmd)
    tools, _ = memory_backends(_environment(), _events(user, source, cmd))
    deps = AgentDeps(tools=tools)
    triage = await run_triage(deps, triage_input(alerts))
    report = await run_investigation(
        deps, InvestigationInput(incident_id="inc-1", alerts=alerts, triage=triage)
    )
    plan = await run_remediation(deps, triage, report, SCORED_KINDS)
    proposed = [f"{p.action.kind.value}:{p.action.target}" for p in plan.proposals]
    return report.verdict, triage.rationale, proposed


async def test_an_admin_account_running_psexec_from_a_jump_server_is_administration() -> None:
    verdict, rationale, proposed = await _outcome(ADMIN, JUMP_IP, ROUTINE)
    assert verdict is Verdict.BENIGN
    assert proposed == []
    assert any(line.startswith("operators' routine work: corp\\ops.admin") for line in rationale)


async def test_the_same_remote_execution_from_a_workstation_stays_malicious() -> None:
    verdict, rationale, _ = await _outcome(ADMIN, WORKSTATION_IP, ROUTINE)
    assert verdict is Verdict.MALICIOUS
    assert not any("operators'" in line for line in rationale)


async def test_a_plain_users_account_is_no_operator() -> None:
    verdict, _, _ = await _outcome(USER, JUMP_IP, ROUTINE)
    assert verdict is Verdict.MALICIOUS


async def test_an_operator_account_dumping_a_hive_is_the_attackers_hands() -> None:
    verdict, _, _ = await _outcome(ADMIN, JUMP_IP, HIVE_DUMP)
    assert verdict is Verdict.MALICIOUS
