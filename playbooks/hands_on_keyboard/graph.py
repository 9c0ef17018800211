"""Hands-on-keyboard activity (execution, persistence, lateral movement, defense evasion, C2,
exfiltration, impact, initial access): contain per the labelling rules, observe, summarise.

Topology: START -> investigate -> contain -> summarise -> END
"""

from __future__ import annotations

from enum import StrEnum
from functools import partial
from typing import Any

from langgraph.graph import END, START, StateGraph

from playbooks.base import Playbook, PlaybookDeps, PlaybookState
from playbooks.common import contain, done, investigate, summary_lines
from tools.actions import ActionKind
from tools.models import Category


class Step(StrEnum):
    INVESTIGATE = "investigate"
    CONTAIN = "contain"
    SUMMARISE = "summarise"


async def summarise(deps: PlaybookDeps, state: PlaybookState) -> dict[str, Any]:
    outcomes = state.get("outcomes", [])
    triage = state["triage"]
    lines = [
        f"hands-on-keyboard playbook ({triage.category.value})",
        *summary_lines(state.get("report"), outcomes),
        f"{len(done(outcomes))} of {len(outcomes)} proposed actions took effect",
    ]
    return {"summary": "\n".join(lines)}


def build(deps: PlaybookDeps) -> StateGraph[Any]:
    graph = StateGraph(PlaybookState)
    graph.add_node(Step.INVESTIGATE, partial(investigate, deps))
    graph.add_node(Step.CONTAIN, partial(contain, deps))
    graph.add_node(Step.SUMMARISE, partial(summarise, deps))
    graph.add_edge(START, Step.INVESTIGATE)
    graph.add_edge(Step.INVESTIGATE, Step.CONTAIN)
    graph.add_edge(Step.CONTAIN, Step.SUMMARISE)
    graph.add_edge(Step.SUMMARISE, END)
    return graph


PLAYBOOK = Playbook(
    id="hands_on_keyboard",
    title="Hands on keyboard: isolate, kill, remove persistence, block infrastructure",
    categories=frozenset(
        {
            Category.EXECUTION,
            Category.PERSISTENCE,
            Category.LATERAL_MOVEMENT,
            Category.DEFENSE_EVASION,
            Category.COMMAND_AND_CONTROL,
            Category.EXFILTRATION,
            Category.IMPACT,
            Category.INITIAL_ACCESS,
        }
    ),
    allowed_actions=frozenset(
        {
            ActionKind.ISOLATE_HOST,
            ActionKind.KILL_PROCESS,
            ActionKind.REMOVE_PERSISTENCE,
            ActionKind.QUARANTINE_FILE,
            ActionKind.BLOCK_IP,
            ActionKind.BLOCK_DOMAIN,
            ActionKind.DISABLE_ACCOUNT,
        }
    ),
    build=build,
)
