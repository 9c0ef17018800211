"""The investigation agent: scope an incident from telemetry around its alerts.

Topology: START -> load_inventory -> scope_hosts -> END
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


def build_investigation_graph(deps: AgentDeps) -> CompiledStateGraph:
    nodes = make_nodes(deps)
    graph = StateGraph(InvestigationState)
    for step in Step:
        graph.add_node(step.value, nodes[step.value])
    graph.add_edge(START, Step.LOAD_INVENTORY)
    graph.add_edge(Step.LOAD_INVENTORY, Step.SCOPE_HOSTS)
    graph.add_edge(Step.SCOPE_HOSTS, END)
    return graph.compile()


async def run_investigation(
    deps: AgentDeps, investigation_input: InvestigationInput
) -> InvestigationReport:
    state = await build_investigation_graph(deps).ainvoke({"input": investigation_input})
    return state["report"]
