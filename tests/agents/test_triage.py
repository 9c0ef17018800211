from __future__ import annotations

from datetime import timedelta

from agents.deps import AgentDeps
from agents.investigation.graph import run_investigation
from agents.models import InvestigationInput
from agents.remediation.graph import run_remediation
from agents.triage.graph import run_triage
from tests.agents.fakes import T0, FakeEdr, alert, read_tools
from tests.agents.scenarios import (
    lsass_alerts,
    lsass_edr,
    triage_input,
    update_alerts,
    update_edr,
)
from tools.actions import SCORED_KINDS, ActionKind
from tools.models import Category, Severity, Verdict
from tools.results import LogonEvent, ProcessEvent


async def test_triage_lsass_dump_with_process_tree_is_malicious_credential_access() -> None:
    deps = AgentDeps(tools=read_tools(lsass_edr()))
    result = await run_triage(deps, triage_input(lsass_alerts()))
    assert result.verdict is Verdict.MALICIOUS
    assert result.category is Category.CREDENTIAL_ACCESS
    assert result.playbook_id == ""  # a category, never a playbook (the routing file picks)
    assert result.confidence > 0.9
    assert "T1003.001" in result.techniques
    assert result.entities.hosts == ["PRD01"]
    assert result.entities.users == ["pandalab\\pedro.gustavo"]
    assert "PRD01:4242" in result.entities.processes
    assert any("comsvcs" in line for line in result.rationale)


async def test_triage_generic_rules_on_windows_update_are_benign() -> None:
    deps = AgentDeps(tools=read_tools(update_edr()))
    result = await run_triage(deps, triage_input(update_alerts()))
    assert result.verdict is Verdict.BENIGN
    assert result.category is Category.BENIGN_ACTIVITY
    assert result.playbook_id == ""  # a category, never a playbook (the routing file picks)
    assert result.entities.users == []  # SYSTEM is never a target


async def test_investigation_scopes_the_attacker_tree_and_remediation_follows_the_rules() -> None:
    deps = AgentDeps(tools=read_tools(lsass_edr()))
    alerts = lsass_alerts()
    triage = await run_triage(deps, triage_input(alerts))
    report = await run_investigation(
        deps, InvestigationInput(incident_id="inc-1", alerts=alerts, triage=triage)
    )
    assert report.corroborated
    assert report.compromised_assets == ["PRD01"]
    assert report.compromised_identities == ["pandalab\\pedro.gustavo"]
    assert "10.0.5.13" in report.attacker_ips
    assert {"PRD01:3100", "PRD01:4100", "PRD01:4242"} <= set(report.malicious_processes)
    plan = await run_remediation(deps, triage, report, SCORED_KINDS)
    got = {(p.action.kind, p.action.target) for p in plan.proposals}
    assert got == {
        (ActionKind.ISOLATE_HOST, "PRD01"),
        (ActionKind.DISABLE_ACCOUNT, "pandalab\\pedro.gustavo"),
        (ActionKind.BLOCK_IP, "10.0.5.13"),
    }
    assert all(p.rationale and p.evidence for p in plan.proposals)


async def test_remediation_proposes_only_allowed_kinds() -> None:
    deps = AgentDeps(tools=read_tools(lsass_edr()))
    alerts = lsass_alerts()
    triage = await run_triage(deps, triage_input(alerts))
    report = await run_investigation(
        deps, InvestigationInput(incident_id="inc-1", alerts=alerts, triage=triage)
    )
    plan = await run_remediation(deps, triage, report, {ActionKind.ISOLATE_HOST})
    assert [(p.action.kind, p.action.target) for p in plan.proposals] == [
        (ActionKind.ISOLATE_HOST, "PRD01")
    ]


async def test_benign_incident_gets_no_proposals() -> None:
    deps = AgentDeps(tools=read_tools(update_edr()))
    alerts = update_alerts()
    triage = await run_triage(deps, triage_input(alerts))
    report = await run_investigation(
        deps, InvestigationInput(incident_id="inc-2", alerts=alerts, triage=triage)
    )
    assert report.verdict is Verdict.BENIGN
    plan = await run_remediation(deps, triage, report, SCORED_KINDS)
    assert plan.proposals == []


def _recon_edr(parent_image: str) -> FakeEdr:
    """sc.exe <- cmd.exe <- parent_image, as an operator's shell command leaves it."""
    return FakeEdr(
        processes=[
            ProcessEvent(time=T0 - timedelta(minutes=5), host="PRD01", pid=2064,
                         image=parent_image, cmd_line=parent_image, parent_pid=900,
                         parent_image=r"C:\Windows\explorer.exe",
                         user="PANDALAB\\pedro.gustavo"),
            ProcessEvent(time=T0, host="PRD01", pid=6960, image=r"C:\Windows\System32\cmd.exe",
                         cmd_line=r"cmd.exe /c sc.exe \\DC01 query IKEEXT", parent_pid=2064,
                         parent_image=parent_image, user="PANDALAB\\pedro.gustavo"),
            ProcessEvent(time=T0, host="PRD01", pid=3108, image=r"C:\Windows\System32\sc.exe",
                         cmd_line=r"sc.exe \\DC01 query IKEEXT", parent_pid=6960,
                         parent_image=r"C:\Windows\System32\cmd.exe",
                         user="PANDALAB\\pedro.gustavo"),
        ]
    )  # fmt: skip


async def test_lone_discovery_is_malicious_only_under_an_implant() -> None:
    query = [
        alert("s1", "SC.EXE Query Execution", Severity.LOW, [("T1007", "discovery")],
              user="pandalab\\pedro.gustavo", pid=3108, name="sc.exe",
              rule_uid="57712d7a-679c-4a41-a913-87e7175ae429")
    ]  # fmt: skip
    implant = AgentDeps(tools=read_tools(_recon_edr(r"C:\Users\pedro\Desktop\GruntHTTP.exe")))
    result = await run_triage(implant, triage_input(query))
    assert (result.verdict, result.category) == (Verdict.MALICIOUS, Category.DISCOVERY)
    assert result.playbook_id == ""  # a category, never a playbook (the routing file picks)
    by_hand = AgentDeps(tools=read_tools(_recon_edr(r"C:\Windows\explorer.exe")))
    assert (await run_triage(by_hand, triage_input(query))).verdict is Verdict.BENIGN


async def test_com_server_started_for_a_remote_logon_makes_the_incident_lateral_movement() -> None:
    excel = r'"C:\Program Files\Office16\EXCEL.EXE" /automation -Embedding'
    edr = FakeEdr(
        processes=[
            ProcessEvent(time=T0, host="PRD01", pid=1324, image=r"C:\Office16\EXCEL.EXE",
                         cmd_line=excel, parent_pid=896, parent_image="svchost.exe",
                         user="PANDALAB\\pedro.gustavo"),
        ],
        logon_events=[
            LogonEvent(time=T0 - timedelta(seconds=1), host="PRD01", logon_type=3,
                       user="PANDALAB\\pedro.gustavo", src_ip="172.18.39.7"),
        ],
    )  # fmt: skip
    alerts = [
        alert("o1", "Office Autorun Keys Modification", Severity.MEDIUM,
              [("T1547.001", "persistence")], user="pandalab\\pedro.gustavo", pid=1324,
              name="EXCEL.EXE"),
        alert("o2", "Suspicious New Instance Of An Office COM Object", Severity.MEDIUM, [],
              user="pandalab\\pedro.gustavo", pid=1324, name="EXCEL.EXE", cmd=excel),
    ]  # fmt: skip
    deps = AgentDeps(tools=read_tools(edr))
    result = await run_triage(deps, triage_input(alerts))
    assert result.category is Category.LATERAL_MOVEMENT
    report = await run_investigation(
        deps, InvestigationInput(incident_id="inc-1", alerts=alerts, triage=result)
    )
    assert "WS02" in report.compromised_assets  # the logon's source, an inventory asset
    assert report.compromised_identities == ["pandalab\\pedro.gustavo"]
    alone = AgentDeps(tools=read_tools(FakeEdr(processes=edr.processes)))
    assert (await run_triage(alone, triage_input(alerts))).category is Category.PERSISTENCE
