"""The remediation agent: triage and investigation in, a plan of typed proposals out.

`plan_actions` adds `patch` proposals for the exploited CVEs the alerts name when `patch` is
allowed (`patching.py`).

Topology: START -> plan_actions -> (consult_model when a model is configured) -> END

The graph is compiled once per topology (`agents/compiled.py`); each run brings its own nodes.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum
from functools import lru_cache

from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph

from agents.compiled import step, with_nodes
from agents.deps import AgentDeps
from agents.models import InvestigationReport, RemediationPlan, TriageResult
from agents.remediation.nodes import make_nodes
from agents.remediation.state import RemediationInput, RemediationState
from tools.actions import ActionKind
from tools.models import Alert


class Step(StrEnum):
    PLAN_ACTIONS = "plan_actions"
    CONSULT_MODEL = "consult_model"


@lru_cache(maxsize=2)  # with and without a model
def remediation_graph(with_model: bool) -> CompiledStateGraph:
    graph = StateGraph(RemediationState)
    for each in Step:
        graph.add_node(each.value, step(each.value))
    graph.add_edge(START, Step.PLAN_ACTIONS)

    def route_after_plan_actions(_: RemediationState) -> str:
        return Step.CONSULT_MODEL if with_model else END

    graph.add_conditional_edges(
        Step.PLAN_ACTIONS, route_after_plan_actions, [Step.CONSULT_MODEL, END]
    )
    graph.add_edge(Step.CONSULT_MODEL, END)
    return graph.compile()


async def run_remediation(
    deps: AgentDeps,
    triage: TriageResult,
    report: InvestigationReport,
    allowed_kinds: Iterable[ActionKind],
    alerts: Iterable[Alert] = (),
) -> RemediationPlan:
    request = RemediationInput(
        triage=triage, report=report, allowed_kinds=frozenset(allowed_kinds), alerts=list(alerts)
    )
    graph = remediation_graph(deps.model is not None)
    state = await graph.ainvoke({"input": request}, with_nodes(make_nodes(deps)))
    return state["plan"]
