"""Accounts whose credentials the attacker used beyond the account it runs as (issue 12, causes 2
and 3), on small incidents written for it: a bare `/user:X` qualified with the domain it was used
in, a NewCredentials logon presenting another account's hash, an NTLM downgrade proving
credential theft, and the accounts nothing qualifies or the directory does not hold, which are
reported and never proposed (disabling them could only fail). Raw events go through the
recorded twin."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from agents.deps import AgentDeps
from agents.entities import AssetIndex
from agents.investigation.graph import run_investigation
from agents.models import InvestigationInput, InvestigationReport, TriageResult
from agents.remediation.nodes import deterministic_plan
from agents.remediation.state import RemediationInput
from agents.triage.graph import run_triage
from tests.agents.fakes import T0, FakeIdentity, FakeIntel, FakeInventory, alert
from tests.agents.scenarios import triage_input
from tools.actions import ActionKind
from tools.edr.memory import InMemoryEdr
from tools.errors import TransientToolError
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
)
from tools.results import AccountInfo
from tools.toolsets import ReadTools

NT_HASH = "0123456789abcdef0123456789abcdef"
RUBEUS = r"C:\Users\Public\Rubeus.exe"
AGENT = r"C:\Windows\System32\WindowsPowerShell\v1.0\powershell.exe"
GUID = "{6a1e0b2c-0000-4000-8000-00000000c0de}"


def fabrikam() -> Environment:
    """A small domain (NetBIOS FABRIKAM, DNS fabrikam.test) whose inventory lists only its
    admins: the directory knows every other account."""
    return Environment(
        assets=[
            Asset(id="FS2", hostname="FS2.fabrikam.test", kind=AssetKind.SERVER,
                  criticality=Criticality.HIGH, ips=["10.30.0.2"]),
            Asset(id="PC11", hostname="PC11.fabrikam.test", kind=AssetKind.WORKSTATION,
                  criticality=Criticality.MEDIUM, ips=["10.30.0.11"]),
            Asset(id="KIOSK", hostname="KIOSK", kind=AssetKind.WORKSTATION,
                  criticality=Criticality.LOW, ips=["10.30.0.50"]),
        ],
        identities=[
            Identity(id="fabrikam\\oscar", kind=IdentityKind.ADMIN, privileged=True)
        ],
        internal_networks=["10.30.0.0/16"],
    )  # fmt: skip


class Directory:
    """A directory that holds the given accounts (any spelling of their name), or fails."""

    def __init__(self, *names: str, down: bool = False) -> None:
        self.names = {n.lower() for n in names}
        self.down = down

    async def get_account(self, identity: str) -> AccountInfo | None:
        if self.down:
            raise TransientToolError("directory unreachable")
        name = identity.lower().rsplit("\\", 1)[-1]
        return AccountInfo(id=identity) if name in self.names else None


def _event(seconds: int, host: str, source: str, number: int, **fields: Any) -> dict[str, Any]:
    stamp = (T0 + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")
    return {"@timestamp": stamp, "host": host, "event_source": source, "EventID": number, **fields}


def _process(seconds: int, host: str, pid: int, image: str, cmd: str, user: str) -> dict[str, Any]:
    return _event(
        seconds, host, "sysmon", 1, ProcessId=pid, Image=image, CommandLine=cmd, User=user,
        ParentProcessId=900, ParentImage=r"C:\Windows\System32\cmd.exe",
    )  # fmt: skip


async def _run(
    alerts: list[Alert],
    events: list[dict[str, Any]],
    directory: Any = None,
    env: Environment | None = None,
) -> tuple[TriageResult, InvestigationReport]:
    env = env or fabrikam()
    tools = ReadTools(
        edr=InMemoryEdr(env, events),
        identity=directory or FakeIdentity(),
        intel=FakeIntel(),
        inventory=FakeInventory(env),
    )
    deps = AgentDeps(tools=tools)
    triage = await run_triage(deps, triage_input(alerts))
    report = await run_investigation(
        deps, InvestigationInput(incident_id="inc-1", alerts=alerts, triage=triage)
    )
    return triage, report


def _disabled(triage: TriageResult, report: InvestigationReport) -> set[str]:
    request = RemediationInput(triage=triage, report=report, allowed_kinds=frozenset(ActionKind))
    return {
        p.action.target.lower()
        for p in deterministic_plan(request)
        if p.action.kind is ActionKind.DISABLE_ACCOUNT
    }


# --- a bare /user:X, qualified with the domain it was used in ---------------------------------


def asktgt(host: str, actor: str, user: str = "nadia") -> tuple[list[Alert], list[dict[str, Any]]]:
    cmd = rf"{RUBEUS} asktgt /user:{user} /rc4:{NT_HASH} /ptt"
    alerts = [
        alert("r1", "HackTool - Rubeus Execution", Severity.CRITICAL,
              [("T1558", "credential-access")], host=host, user=actor, pid=4300,
              name="Rubeus.exe", cmd=cmd),
    ]  # fmt: skip
    return alerts, [_process(0, host, 4300, RUBEUS, cmd, actor)]


async def test_a_bare_account_takes_the_domain_of_the_account_that_used_it() -> None:
    triage, report = await _run(*asktgt("PC11", "FABRIKAM\\oscar"))
    assert "fabrikam\\nadia" in {i.lower() for i in report.compromised_identities}
    assert "fabrikam\\nadia" in _disabled(triage, report)
    assert "nadia" not in _disabled(triage, report)


async def test_a_local_actor_leaves_the_domain_to_the_host() -> None:
    triage, report = await _run(*asktgt("PC11", "PC11\\helpdesk"))
    assert "fabrikam\\nadia" in _disabled(triage, report)


def test_a_dotted_account_is_the_host_s_own() -> None:
    index = AssetIndex(fabrikam())
    assert index.qualified_id(".\\helpdesk", "PC11", "FABRIKAM\\oscar") == "pc11\\helpdesk"
    assert index.qualified_id("helpdesk", "PC11", "FABRIKAM\\oscar") == "fabrikam\\helpdesk"


async def test_a_bare_account_nothing_qualifies_is_reported_not_disabled() -> None:
    """A host outside any domain, run by its local account: which `nadia` is it? No directory
    answers a bare name, so no action names it."""
    triage, report = await _run(*asktgt("KIOSK", "KIOSK\\kiosk"))
    assert not any("nadia" in t for t in _disabled(triage, report))
    assert any("nadia" in f.summary and "not contained" in f.summary for f in report.findings)


async def test_an_account_the_directory_does_not_hold_is_not_proposed() -> None:
    triage, report = await _run(*asktgt("PC11", "FABRIKAM\\oscar"), directory=Directory("oscar"))
    assert not any("nadia" in t for t in _disabled(triage, report))
    assert "fabrikam\\oscar" in _disabled(triage, report)  # the inventory holds it
    assert any("not in the directory" in f.summary for f in report.findings)


async def test_an_alert_user_the_directory_does_not_hold_stands_in_for_nobody() -> None:
    """With no account left to contain, the alerts' users stand in: never one the directory
    was just asked about and does not hold."""
    cmd = r"C:\Users\Public\tool.exe -dump"
    alerts = [
        alert("g1", "HackTool Execution", Severity.CRITICAL, [("T1003.001", "credential-access")],
              host="PC11", user="FABRIKAM\\ghost", pid=4400, name="tool.exe", cmd=cmd),
    ]  # fmt: skip
    events = [_process(0, "PC11", 4400, r"C:\Users\Public\tool.exe", cmd, "FABRIKAM\\ghost")]
    triage, report = await _run(alerts, events, directory=Directory("oscar"))
    assert report.compromised_identities == []
    assert "fabrikam\\ghost" in {i.lower() for i in report.unconfirmed_identities}
    assert _disabled(triage, report) == set()


async def test_an_unreadable_directory_keeps_the_account() -> None:
    triage, report = await _run(*asktgt("PC11", "FABRIKAM\\oscar"), directory=Directory(down=True))
    assert "fabrikam\\nadia" in _disabled(triage, report)


# --- a NewCredentials logon presenting another account's hash ---------------------------------


def pass_the_hash(outbound: str, domain: str) -> tuple[list[Alert], list[dict[str, Any]]]:
    """An implant run by oscar patches LSASS; a type 9 logon then presents another account."""
    alerts = [
        alert("p1", "LSASS Access From Non System Account", Severity.HIGH,
              [("T1003.001", "credential-access")], host="PC11", user="FABRIKAM\\oscar",
              pid=5100, name="powershell.exe"),
        alert("p2", "Successful Overpass the Hash Attempt", Severity.HIGH,
              [("T1550.002", "lateral-movement")], host="PC11", user="FABRIKAM\\oscar",
              time=T0 + timedelta(seconds=4)),
    ]  # fmt: skip
    events = [
        _process(0, "PC11", 5100, AGENT, f"{AGENT} -nop -w hidden -enc {'QQBCAEMA' * 4}",
                 "FABRIKAM\\oscar"),
        _event(4, "PC11", "security", 4624, LogonType="9", LogonProcessName="seclogo",
               SubjectUserName="oscar", SubjectDomainName="FABRIKAM",
               TargetUserName="oscar", TargetDomainName="FABRIKAM",
               TargetOutboundUserName=outbound, TargetOutboundDomainName=domain,
               IpAddress="::1"),
    ]  # fmt: skip
    return alerts, events


async def test_the_account_a_new_credentials_logon_presents_was_used() -> None:
    triage, report = await _run(*pass_the_hash("nadia", "fabrikam.test"))
    assert "fabrikam\\nadia" in _disabled(triage, report)
    assert any("used the credentials of fabrikam\\nadia" in f.summary for f in report.findings)


async def test_a_made_up_account_for_a_new_logon_session_is_nobody() -> None:
    """Rubeus /createnetonly opens the session with a random account of a random domain."""
    triage, report = await _run(*pass_the_hash("QX7Z2K", "R4ND0M"))
    assert not any("qx7z2k" in t for t in _disabled(triage, report))
    assert any("no domain of the estate" in f.summary for f in report.findings)


# --- an NTLM downgrade proves credential theft --------------------------------------------------


def downgrade(key: str) -> tuple[list[Alert], list[dict[str, Any]]]:
    """An implant known by pid from its process accesses writes LSA values by GUID only."""
    alerts = [
        alert("d1", "Potential Shellcode Injection", Severity.MEDIUM,
              [("T1055", "privilege-escalation")], host="PC11", pid=716,
              name="powershell.exe"),
        alert("d2", "Registry Value Changed by PowerShell", Severity.HIGH,
              [("T1112", "persistence")], host="PC11", user="FABRIKAM\\nadia",
              time=T0 + timedelta(seconds=2)),
    ]  # fmt: skip
    events = [
        _event(1, "PC11", "sysmon", 10, SourceProcessId="716", SourceImage=AGENT,
               SourceProcessGUID=GUID, TargetProcessId="1000",
               TargetImage=r"C:\Windows\System32\svchost.exe", GrantedAccess="0x1f3fff"),
        _event(2, "PC11", "sysmon", 13, EventType="SetValue", Image=AGENT, ProcessGuid=GUID,
               TargetObject=key, Details="DWORD (0x00000002)"),
    ]  # fmt: skip
    return alerts, events


async def test_an_attacker_lowering_the_ntlm_level_is_taking_credentials() -> None:
    triage, report = await _run(
        *downgrade(r"HKLM\System\CurrentControlSet\Control\Lsa\LMCompatibilityLevel")
    )
    assert report.category is Category.CREDENTIAL_ACCESS
    assert "fabrikam\\nadia" in _disabled(triage, report)


async def test_another_lsa_value_proves_no_theft() -> None:
    triage, report = await _run(
        *downgrade(r"HKLM\System\CurrentControlSet\Control\Lsa\LimitBlankPasswordUse")
    )
    assert report.category is not Category.CREDENTIAL_ACCESS
    assert _disabled(triage, report) == set()
