from __future__ import annotations

from agents.deps import AgentDeps
from agents.investigation.graph import run_investigation
from agents.models import InvestigationInput
from agents.remediation.graph import run_remediation
from agents.triage.graph import run_triage
from tests.agents.fakes import read_tools
from tests.agents.scenarios import (
    lsass_alerts,
    lsass_edr,
    triage_input,
    update_alerts,
    update_edr,
)
from tools.actions import SCORED_KINDS, ActionKind
from tools.models import Category, Verdict


async def test_triage_lsass_dump_with_process_tree_is_malicious_credential_access() -> None:
    deps = AgentDeps(tools=read_tools(lsass_edr()))
    result = await run_triage(deps, triage_input(lsass_alerts()))
    assert result.verdict is Verdict.MALICIOUS
    assert result.category is Category.CREDENTIAL_ACCESS
    assert result.playbook_id == "credential_access"
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
    assert result.playbook_id == "triage_only"
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
