"""The triage agent: alerts in, a verdict, severity, category, entities and playbook out.

Topology: START -> extract_entities -> score_alerts -> corroborate -> decide
-> (consult_model when a model is configured) -> END
"""

from __future__ import annotations

from enum import StrEnum

from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph

from agents.deps import AgentDeps
from agents.models import TriageInput, TriageResult
from agents.triage.nodes import make_nodes
from agents.triage.state import TriageState


class Step(StrEnum):
    EXTRACT_ENTITIES = "extract_entities"
    SCORE_ALERTS = "score_alerts"
    CORROBORATE = "corroborate"
    DECIDE = "decide"
    CONSULT_MODEL = "consult_model"


def build_triage_graph(deps: AgentDeps) -> CompiledStateGraph:
    nodes = make_nodes(deps)
    graph = StateGraph(TriageState)
    for step in Step:
        graph.add_node(step.value, nodes[step.value])
    graph.add_edge(START, Step.EXTRACT_ENTITIES)
    graph.add_edge(Step.EXTRACT_ENTITIES, Step.SCORE_ALERTS)
    graph.add_edge(Step.SCORE_ALERTS, Step.CORROBORATE)
    graph.add_edge(Step.CORROBORATE, Step.DECIDE)

    def route_after_decide(_: TriageState) -> str:
        return Step.CONSULT_MODEL if deps.model is not None else END

    graph.add_conditional_edges(Step.DECIDE, route_after_decide, [Step.CONSULT_MODEL, END])
    graph.add_edge(Step.CONSULT_MODEL, END)
    return graph.compile()


async def run_triage(deps: AgentDeps, triage_input: TriageInput) -> TriageResult:
    state = await build_triage_graph(deps).ainvoke({"input": triage_input})
    return state["result"]
