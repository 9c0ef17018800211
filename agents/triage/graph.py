"""The triage agent: alerts in, a verdict, severity, category, entities and playbook out.

Topology: START -> extract_entities -> score_alerts -> corroborate -> decide
-> (consult_model when a model is configured) -> END

The graph is compiled once per topology (`agents/compiled.py`); each run brings its own nodes.
"""

from __future__ import annotations

from enum import StrEnum
from functools import lru_cache

from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph

from agents.compiled import step, with_nodes
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


@lru_cache(maxsize=2)  # with and without a model
def triage_graph(with_model: bool) -> CompiledStateGraph:
    graph = StateGraph(TriageState)
    for each in Step:
        graph.add_node(each.value, step(each.value))
    graph.add_edge(START, Step.EXTRACT_ENTITIES)
    graph.add_edge(Step.EXTRACT_ENTITIES, Step.SCORE_ALERTS)
    graph.add_edge(Step.SCORE_ALERTS, Step.CORROBORATE)
    graph.add_edge(Step.CORROBORATE, Step.DECIDE)

    def route_after_decide(_: TriageState) -> str:
        return Step.CONSULT_MODEL if with_model else END

    graph.add_conditional_edges(Step.DECIDE, route_after_decide, [Step.CONSULT_MODEL, END])
    graph.add_edge(Step.CONSULT_MODEL, END)
    return graph.compile()


async def run_triage(deps: AgentDeps, triage_input: TriageInput) -> TriageResult:
    graph = triage_graph(deps.model is not None)
    state = await graph.ainvoke({"input": triage_input}, with_nodes(make_nodes(deps)))
    return state["result"]
