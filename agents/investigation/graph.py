"""The investigation agent: scope an incident from telemetry around its alerts.

Topology: START -> load_inventory -> scope_hosts -> END, and with an investigation model
START -> load_inventory -> scope_hosts -> consult_model -> END (`model_loop.py`).

The graph is compiled once per topology (`agents/compiled.py`); each run brings its own nodes.
"""

from __future__ import annotations

from enum import StrEnum
from functools import lru_cache

from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph

from agents.compiled import step, with_nodes
from agents.deps import AgentDeps
from agents.investigation.nodes import make_nodes
from agents.investigation.state import InvestigationState
from agents.models import InvestigationInput, InvestigationReport


class Step(StrEnum):
    LOAD_INVENTORY = "load_inventory"
    SCOPE_HOSTS = "scope_hosts"
    CONSULT_MODEL = "consult_model"


@lru_cache(maxsize=2)  # with and without an investigation model
def investigation_graph(with_model: bool) -> CompiledStateGraph:
    graph = StateGraph(InvestigationState)
    steps = [Step.LOAD_INVENTORY, Step.SCOPE_HOSTS]
    if with_model:  # without a model, exactly the rules' graph
        steps.append(Step.CONSULT_MODEL)
    for each in steps:
        graph.add_node(each.value, step(each.value))
    for before, after in zip([START, *steps], [*steps, END], strict=True):
        graph.add_edge(before, after)
    return graph.compile()


async def run_investigation(
    deps: AgentDeps, investigation_input: InvestigationInput
) -> InvestigationReport:
    graph = investigation_graph(deps.investigator is not None)
    state = await graph.ainvoke({"input": investigation_input}, with_nodes(make_nodes(deps)))
    return state["report"]
