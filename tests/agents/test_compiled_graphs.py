"""The agent graphs are compiled once per topology and shared by every run: each run still
reads its own incident's tools, also when two runs overlap."""

from __future__ import annotations

import asyncio

from agents.deps import AgentDeps
from agents.investigation.graph import investigation_graph, run_investigation
from agents.models import InvestigationInput, TriageResult
from agents.remediation.graph import remediation_graph, run_remediation
from agents.triage.graph import run_triage, triage_graph
from tests.agents.fakes import read_tools
from tests.agents.scenarios import lsass_alerts, lsass_edr, triage_input, update_alerts, update_edr
from tools.actions import SCORED_KINDS
from tools.models import Alert, Verdict


async def _pipeline(deps: AgentDeps, alerts: list[Alert]) -> tuple[TriageResult, object, object]:
    triage = await run_triage(deps, triage_input(alerts))
    request = InvestigationInput(incident_id="inc-1", alerts=alerts, triage=triage)
    report = await run_investigation(deps, request)
    plan = await run_remediation(deps, triage, report, SCORED_KINDS, alerts)
    return triage, report, plan


async def test_runs_at_once_over_one_compiled_graph_each_read_their_own_tools() -> None:
    attack = AgentDeps(tools=read_tools(lsass_edr()))
    update = AgentDeps(tools=read_tools(update_edr()))
    alone = [
        await _pipeline(attack, lsass_alerts()),
        await _pipeline(update, update_alerts()),
    ]
    together = await asyncio.gather(
        _pipeline(attack, lsass_alerts()),
        _pipeline(update, update_alerts()),
        _pipeline(AgentDeps(tools=read_tools(lsass_edr())), lsass_alerts()),
    )
    assert alone[0][0].verdict is Verdict.MALICIOUS
    assert alone[1][0].verdict is Verdict.BENIGN
    assert list(together) == [alone[0], alone[1], alone[0]]


def test_each_topology_is_compiled_once_and_the_cache_is_bounded() -> None:
    for build in (triage_graph, investigation_graph, remediation_graph):
        assert build(False) is build(False)
        assert build(True) is build(True)
        assert build(True) is not build(False)
        assert build.cache_info().maxsize == 2
    assert "consult_model" in investigation_graph(True).nodes
    assert "consult_model" not in investigation_graph(False).nodes
