"""Degraded evidence in the agents, on the recorded incident where it went wrong: a meterpreter
payload run as pandalab\\pedro.gustavo dumps lsass on PRD01, whose owner, pandalab\\pupy.godoy,
downloaded it with Edge. Read through an EDR twin that answers 503 for a while:

- within the retry budget, triage, investigation and remediation are exactly the unfaulted ones;
- beyond it, both are marked degraded with what could not be read, and the owner's browsing
  (alerts on msedge.exe, whose records were not read) names no account to disable: nothing is
  proposed on a target the unfaulted run does not propose.
"""

from __future__ import annotations

from agents.deps import AgentDeps
from agents.investigation.graph import run_investigation
from agents.models import (
    ExtractedEntities,
    InvestigationInput,
    InvestigationReport,
    TriageInput,
    TriageResult,
)
from agents.reads import ReadRetry
from agents.remediation.graph import run_remediation
from agents.remediation.nodes import admit
from agents.remediation.state import RemediationInput
from agents.triage.graph import run_triage
from playbooks.credential_access.graph import PLAYBOOK
from simulations.backends import memory_backends
from simulations.loader import LoadedIncident
from tests.agents.emulated_edr import HOST_OWNER, recorded
from tests.agents.fakes import FlakyEdr
from tools.actions import SCORED_KINDS, ActionKind
from tools.models import Category, Severity, Verdict
from tools.toolsets import ReadTools

OWNER = HOST_OWNER
FAST = ReadRetry(first_wait_s=0.001, max_wait_s=0.004)


Proposed = list[tuple[ActionKind, str]]


async def agents_on(
    loaded: LoadedIncident, failures: int
) -> tuple[TriageResult, InvestigationReport, Proposed]:
    spec = loaded.spec
    tools, _ = memory_backends(spec.environment, loaded.telemetry())
    edr = FlakyEdr(tools.edr, failures=failures)
    faulted = ReadTools(
        edr=edr, identity=tools.identity, intel=tools.intel, inventory=tools.inventory
    )
    deps = AgentDeps(tools=faulted, reads=FAST)
    triage = await run_triage(deps, TriageInput(incident_id=spec.id, alerts=spec.alerts))
    report = await run_investigation(
        deps, InvestigationInput(incident_id=spec.id, alerts=spec.alerts, triage=triage)
    )
    plan = await run_remediation(deps, triage, report, PLAYBOOK.allowed_actions)
    return triage, report, [(p.action.kind, p.action.target) for p in plan.proposals]


async def test_six_503s_within_the_budget_change_nothing() -> None:
    loaded = recorded()
    clean = await agents_on(loaded, failures=0)
    faulted = await agents_on(loaded, failures=6)
    assert faulted == clean
    triage, report, proposals = faulted
    assert not triage.degraded and not report.degraded
    assert (ActionKind.BLOCK_IP, "10.0.5.13") in proposals
    assert (ActionKind.DISABLE_ACCOUNT, "pandalab\\pedro.gustavo") in proposals


async def test_reads_beyond_the_budget_degrade_and_never_name_the_hosts_owner() -> None:
    loaded = recorded()
    _, _, clean = await agents_on(loaded, failures=0)
    triage, report, proposals = await agents_on(loaded, failures=1_000_000)
    assert triage.degraded and report.degraded
    assert "process events on PRD01 unavailable (TransientToolError)" in triage.evidence_gaps
    assert triage.rationale[0].startswith("Evidence degraded: process events on PRD01")
    assert OWNER in report.unconfirmed_identities
    assert OWNER not in report.compromised_identities
    assert all(p.split(":")[0] == "PRD01" for p in report.unconfirmed_processes)
    assert set(proposals) <= set(clean)
    assert not any(target == OWNER for _, target in proposals)


def _triage(users: list[str]) -> TriageResult:
    return TriageResult(
        verdict=Verdict.MALICIOUS,
        confidence=0.9,
        severity=Severity.HIGH,
        category=Category.CREDENTIAL_ACCESS,
        entities=ExtractedEntities(hosts=["PRD01"], users=users, processes=["PRD01:7508"]),
        playbook_id="credential_access",
    )


def _report(**fields: object) -> InvestigationReport:
    return InvestigationReport.model_validate(
        {"verdict": "malicious", "confidence": 0.5, "corroborated": False, **fields}
    )


async def test_an_unconfirmed_account_is_no_stand_in_and_no_target_for_a_model() -> None:
    triage = _triage([OWNER, "pandalab\\pedro.gustavo"])
    report = _report(
        compromised_assets=["PRD01"],
        degraded=True,
        evidence_gaps=["process events on PRD01 unavailable (TransientToolError)"],
        unconfirmed_identities=[OWNER],
        unconfirmed_processes=["PRD01:7508"],
    )
    deps = AgentDeps(tools=ReadTools(edr=None, identity=None, intel=None, inventory=None))  # type: ignore[arg-type]
    plan = await run_remediation(deps, triage, report, SCORED_KINDS)
    got = {(p.action.kind, p.action.target) for p in plan.proposals}
    assert (ActionKind.DISABLE_ACCOUNT, "pandalab\\pedro.gustavo") in got
    assert not any(target == OWNER for _, target in got)
    assert all(
        p.evidence[0].startswith("Evidence degraded: process events") for p in plan.proposals
    )
    request = RemediationInput(triage=triage, report=report, allowed_kinds=SCORED_KINDS)
    assert admit(request, "disable_account", OWNER) is None
    assert admit(request, "kill_process", "PRD01:7508") is None
    assert admit(request, "disable_account", "pandalab\\pedro.gustavo") is not None
