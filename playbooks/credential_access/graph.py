"""Credential theft: contain the host and the account, then fall back to a lesser containment of
the identity when isolation was refused or timed out.

Topology: START -> investigate -> contain -> (lesser_containment when an isolation was denied or
expired) -> summarise -> END
"""

from __future__ import annotations

from enum import StrEnum
from functools import partial
from typing import Any

from langgraph.graph import END, START, StateGraph

from agents.estate import is_reset_only_account
from agents.models import OutcomeStatus, ProposedAction
from playbooks.base import Playbook, PlaybookDeps, PlaybookState, propose
from playbooks.common import contain, done, investigate, summary_lines
from tools.actions import ActionKind, ResetCredentials, RevokeSessions
from tools.models import Category


class Step(StrEnum):
    INVESTIGATE = "investigate"
    CONTAIN = "contain"
    LESSER_CONTAINMENT = "lesser_containment"
    SUMMARISE = "summarise"


def isolation_refused(state: PlaybookState) -> bool:
    return any(
        o.action.kind is ActionKind.ISOLATE_HOST
        and o.status in (OutcomeStatus.DENIED, OutcomeStatus.EXPIRED)
        for o in state.get("outcomes", [])
    )


async def lesser_containment(deps: PlaybookDeps, state: PlaybookState) -> dict[str, Any]:
    report = state.get("report")
    # krbtgt has no sessions of its own and its reset was proposed with the containment
    identities = [
        u for u in (report.compromised_identities if report else []) if not is_reset_only_account(u)
    ]
    proposals = [
        ProposedAction(action=action, rationale=why, evidence=["isolation was not executed"])
        for user in identities
        for action, why in (
            (RevokeSessions(target=user), "host stays online: cut the stolen sessions"),
            (ResetCredentials(target=user), "host stays online: make the stolen secret useless"),
        )
    ]
    return {"outcomes": propose(deps, proposals)}


async def summarise(deps: PlaybookDeps, state: PlaybookState) -> dict[str, Any]:
    outcomes = state.get("outcomes", [])
    lines = ["credential access playbook", *summary_lines(state.get("report"), outcomes)]
    lines.append(f"{len(done(outcomes))} of {len(outcomes)} proposed actions took effect")
    return {"summary": "\n".join(lines)}


def build(deps: PlaybookDeps) -> StateGraph[Any]:
    graph = StateGraph(PlaybookState)
    graph.add_node(Step.INVESTIGATE, partial(investigate, deps))
    graph.add_node(Step.CONTAIN, partial(contain, deps))
    graph.add_node(Step.LESSER_CONTAINMENT, partial(lesser_containment, deps))
    graph.add_node(Step.SUMMARISE, partial(summarise, deps))
    graph.add_edge(START, Step.INVESTIGATE)
    graph.add_edge(Step.INVESTIGATE, Step.CONTAIN)

    def route_after_contain(state: PlaybookState) -> str:
        return Step.LESSER_CONTAINMENT if isolation_refused(state) else Step.SUMMARISE

    graph.add_conditional_edges(
        Step.CONTAIN, route_after_contain, [Step.LESSER_CONTAINMENT, Step.SUMMARISE]
    )
    graph.add_edge(Step.LESSER_CONTAINMENT, Step.SUMMARISE)
    graph.add_edge(Step.SUMMARISE, END)
    return graph


PLAYBOOK = Playbook(
    id="credential_access",
    title="Credential theft: isolate, disable, fall back to session revocation and reset",
    categories=frozenset({Category.CREDENTIAL_ACCESS}),
    allowed_actions=frozenset(
        {
            ActionKind.ISOLATE_HOST,
            ActionKind.DISABLE_ACCOUNT,
            ActionKind.REVOKE_SESSIONS,
            ActionKind.RESET_CREDENTIALS,
            ActionKind.BLOCK_IP,
            ActionKind.BLOCK_DOMAIN,
            # an autostart value the thief planted re-opens the door once the host is released
            ActionKind.REMOVE_PERSISTENCE,
        }
    ),
    irreversible=frozenset(
        {ActionKind.REVOKE_SESSIONS, ActionKind.RESET_CREDENTIALS, ActionKind.REMOVE_PERSISTENCE}
    ),
    build=build,
)
