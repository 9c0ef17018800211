"""The investigation agent: scope an incident from telemetry around its alerts.

Topology: START -> load_inventory -> scope_hosts -> END, and with an investigation model
START -> load_inventory -> scope_hosts -> consult_model -> END (`model_loop.py`).
"""

from __future__ import annotations

from enum import StrEnum

from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph

from agents.deps import AgentDeps
from agents.investigation.nodes import make_nodes
from agents.investigation.state import InvestigationState
from agents.models import InvestigationInput, InvestigationReport


class Step(StrEnum):
    LOAD_INVENTORY = "load_inventory"
    SCOPE_HOSTS = "scope_hosts"
    CONSULT_MODEL = "consult_model"


def build_investigation_graph(deps: AgentDeps) -> CompiledStateGraph:
    nodes = make_nodes(deps)
    graph = StateGraph(InvestigationState)
    steps = [Step.LOAD_INVENTORY, Step.SCOPE_HOSTS]
    if deps.investigator is not None:  # without a model, exactly the rules' graph
        steps.append(Step.CONSULT_MODEL)
    for step in steps:
        graph.add_node(step.value, nodes[step.value])
    for before, after in zip([START, *steps], [*steps, END], strict=True):
        graph.add_edge(before, after)
    return graph.compile()


async def run_investigation(
    deps: AgentDeps, investigation_input: InvestigationInput
) -> InvestigationReport:
    state = await build_investigation_graph(deps).ainvoke({"input": investigation_input})
    return state["report"]
