"""Hands-on-keyboard activity (execution, persistence, lateral movement, defense evasion, C2,
exfiltration, impact, initial access): contain per the labelling rules, observe, fall back to
stopping the attacker's processes on hosts whose isolation did not happen, summarise.

The known attacker processes are killed along with the isolation of their host (the spec's
"isolate, plus kill where the artefact is known"); a kill that was not done (denied, expired,
failed) is proposed again once the workflow reports the isolation of its host not done either,
since then nothing else stops the process.

Topology: START -> investigate -> contain -> (stop_processes when an isolation did not happen)
-> summarise -> END
"""

from __future__ import annotations

from enum import StrEnum
from functools import partial
from typing import Any

from langgraph.graph import END, START, StateGraph

from agents.models import OutcomeStatus
from agents.remediation.nodes import fallback_kills
from playbooks.base import Playbook, PlaybookDeps, PlaybookState, propose
from playbooks.common import contain, done, investigate, summary_lines
from tools.actions import ActionKind
from tools.models import Category


class Step(StrEnum):
    INVESTIGATE = "investigate"
    CONTAIN = "contain"
    STOP_PROCESSES = "stop_processes"
    SUMMARISE = "summarise"


NOT_DONE = (OutcomeStatus.DENIED, OutcomeStatus.EXPIRED, OutcomeStatus.FAILED)


def uncontained_hosts(state: PlaybookState) -> list[str]:
    """Hosts whose isolation was denied, expired or failed (and never executed since)."""
    outcomes = state.get("outcomes", [])
    isolations = [o for o in outcomes if o.action.kind is ActionKind.ISOLATE_HOST]
    isolated = {o.action.target.lower() for o in done(isolations)}
    return sorted(
        {
            o.action.target
            for o in isolations
            if o.status in NOT_DONE and o.action.target.lower() not in isolated
        }
    )


async def stop_processes(deps: PlaybookDeps, state: PlaybookState) -> dict[str, Any]:
    report = state.get("report")
    assert report is not None
    proposals = fallback_kills(state["triage"], report, uncontained_hosts(state))
    killed = {o.action.target.lower() for o in done(state.get("outcomes", []))}
    proposals = [
        p
        for p in proposals
        if p.action.kind in deps.playbook.allowed_actions and p.action.target.lower() not in killed
    ]
    return {"outcomes": propose(deps, proposals)}


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
    graph.add_node(Step.STOP_PROCESSES, partial(stop_processes, deps))
    graph.add_node(Step.SUMMARISE, partial(summarise, deps))
    graph.add_edge(START, Step.INVESTIGATE)
    graph.add_edge(Step.INVESTIGATE, Step.CONTAIN)

    def route_after_contain(state: PlaybookState) -> str:
        return Step.STOP_PROCESSES if uncontained_hosts(state) else Step.SUMMARISE

    graph.add_conditional_edges(
        Step.CONTAIN, route_after_contain, [Step.STOP_PROCESSES, Step.SUMMARISE]
    )
    graph.add_edge(Step.STOP_PROCESSES, Step.SUMMARISE)
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
            ActionKind.PATCH,  # the exploited CVE's fix (agents/remediation/patching.py)
        }
    ),
    build=build,
)
