"""Credential theft: contain the host and the account, then fall back to a lesser containment of
the identity when isolation was refused or timed out.

Topology: START -> investigate -> contain -> (lesser_containment when an isolation was denied or
expired) -> summarise -> END
"""

from __future__ import annotations

from typing import Any

from langgraph.graph import StateGraph

from playbooks.base import Playbook, PlaybookDeps
from playbooks.common import (
    FollowUp,
    identity_fallback,
    isolation_refused,
    response_graph,
)
from tools.actions import ActionKind
from tools.models import Category

LESSER_CONTAINMENT = FollowUp("lesser_containment", isolation_refused, (identity_fallback,))


def build(deps: PlaybookDeps) -> StateGraph[Any]:
    return response_graph(deps, [LESSER_CONTAINMENT])


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
