"""The playbook authoring contract.

A playbook is a frozen `Playbook` record whose `build` returns an uncompiled LangGraph
`StateGraph` over `PlaybookState`. Nodes read the world only through `PlaybookDeps.agents`
(read-only tools, the agents, maybe a model) and propose actions with `propose`, which checks
every proposal against the playbook's `allowed_actions` and pauses the graph (`interrupt`) until
the workflow resumes it with the outcomes decided by the policy gate, the approvers and the
responders.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, TypedDict

from langgraph.graph import StateGraph
from langgraph.types import interrupt

from agents.deps import AgentDeps
from agents.models import (
    ActionOutcome,
    InvestigationReport,
    ProposedAction,
    RejectedChoice,
    TriageResult,
)
from tools.actions import ActionKind
from tools.models import Alert, Category


class ProposalRejected(ValueError):
    """A playbook proposed an action kind it did not declare: a bug in the playbook."""


class PlaybookState(TypedDict):
    incident_id: str
    alerts: list[Alert]
    triage: TriageResult
    report: InvestigationReport | None
    outcomes: Annotated[list[ActionOutcome], operator.add]
    rejected: Annotated[list[RejectedChoice], operator.add]  # model suggestions refused
    summary: str


@dataclass(frozen=True)
class Playbook:
    id: str
    title: str
    categories: frozenset[Category]
    allowed_actions: frozenset[ActionKind]
    build: Callable[[PlaybookDeps], StateGraph[Any]]
    # Allowed kinds that have no inverse (a killed process, a reset secret): declared so that an
    # author says so knowingly; `garrison playbook validate` checks every such kind is listed.
    irreversible: frozenset[ActionKind] = frozenset()


@dataclass(frozen=True)
class PlaybookDeps:
    agents: AgentDeps
    playbook: Playbook


def propose(
    deps_or_playbook: PlaybookDeps | Playbook, proposals: list[ProposedAction]
) -> list[ActionOutcome]:
    """Validate, then pause the graph until the workflow answers with one outcome per proposal.

    Nothing happens here but the pause: the workflow's policy gate decides every proposal. An
    empty list returns at once without pausing."""
    playbook = (
        deps_or_playbook.playbook
        if isinstance(deps_or_playbook, PlaybookDeps)
        else deps_or_playbook
    )
    for proposal in proposals:
        if proposal.action.kind not in playbook.allowed_actions:
            raise ProposalRejected(
                f"playbook {playbook.id!r} may not propose {proposal.action.kind.value} "
                f"(allowed: {', '.join(sorted(k.value for k in playbook.allowed_actions))})"
            )
    if not proposals:
        return []
    answer = interrupt(
        {"playbook": playbook.id, "proposals": [p.model_dump(mode="json") for p in proposals]}
    )
    return [ActionOutcome.model_validate(outcome) for outcome in answer]
