"""Lateral movement: isolate the source and the target of every hop and disable the account used
(the labelling rule), remove what was planted on the target (a service, a hijacked DLL); when a
host stayed online or the account stayed enabled (refused, expired or failed), cut the account's
sessions and void its secret, and kill the implant on the hosts left online.

Topology: START -> investigate -> contain -> (lesser_containment when a host or an account was
left usable) -> summarise -> END
"""

from __future__ import annotations

from typing import Any

from langgraph.graph import StateGraph

from playbooks.base import Playbook, PlaybookDeps
from playbooks.common import (
    HOST_RESPONSE,
    HOST_RESPONSE_IRREVERSIBLE,
    IDENTITY_FALLBACK,
    FollowUp,
    identity_fallback,
    identity_left_usable,
    implant_kills,
    response_graph,
)
from tools.models import Category

LESSER_CONTAINMENT = FollowUp(
    "lesser_containment", identity_left_usable, (identity_fallback, implant_kills)
)


def build(deps: PlaybookDeps) -> StateGraph[Any]:
    return response_graph(deps, [LESSER_CONTAINMENT])


PLAYBOOK = Playbook(
    id="lateral_movement",
    title="Lateral movement: isolate both ends, disable the account, fall back to revoke and reset",
    categories=frozenset({Category.LATERAL_MOVEMENT}),
    allowed_actions=HOST_RESPONSE | IDENTITY_FALLBACK,
    irreversible=HOST_RESPONSE_IRREVERSIBLE | IDENTITY_FALLBACK,
    build=build,
)
