"""Benign activity: investigate, propose nothing, say why.

Topology: START -> investigate -> summarise -> END
"""

from __future__ import annotations

from enum import StrEnum
from functools import partial
from typing import Any

from langgraph.graph import END, START, StateGraph

from playbooks.base import Playbook, PlaybookDeps, PlaybookState
from playbooks.common import investigate, summary_lines
from tools.models import Category, Verdict


class Step(StrEnum):
    INVESTIGATE = "investigate"
    SUMMARISE = "summarise"


async def summarise(deps: PlaybookDeps, state: PlaybookState) -> dict[str, Any]:
    triage = state["triage"]
    report = state.get("report")
    if triage.verdict is Verdict.BENIGN:
        why = "alerts match ordinary activity without corroborating telemetry: no containment"
    else:
        why = "routed here by the routing file: a ticket, not containment"
    return {"summary": "\n".join(["triage-only playbook", why, *summary_lines(report, [])])}


def build(deps: PlaybookDeps) -> StateGraph[Any]:
    graph = StateGraph(PlaybookState)
    graph.add_node(Step.INVESTIGATE, partial(investigate, deps))
    graph.add_node(Step.SUMMARISE, partial(summarise, deps))
    graph.add_edge(START, Step.INVESTIGATE)
    graph.add_edge(Step.INVESTIGATE, Step.SUMMARISE)
    graph.add_edge(Step.SUMMARISE, END)
    return graph


PLAYBOOK = Playbook(
    id="triage_only",
    title="Triage only: benign activity gets a ticket, not containment",
    categories=frozenset({Category.BENIGN_ACTIVITY}),
    allowed_actions=frozenset(),
    build=build,
)
