"""Command and control: block the attacker's endpoints (addresses and domains) and isolate the
beaconing host; when the isolation did not happen, kill the implant (the attacker process that
talked to the endpoint, and the processes it injected into) so that a channel over an address
not yet blocked dies with it.

Topology: START -> investigate -> contain -> (stop_implant when an isolation did not happen)
-> summarise -> END
"""

from __future__ import annotations

from typing import Any

from langgraph.graph import StateGraph

from playbooks.base import Playbook, PlaybookDeps
from playbooks.common import (
    HOST_RESPONSE,
    HOST_RESPONSE_IRREVERSIBLE,
    FollowUp,
    any_uncontained,
    implant_kills,
    process_kills,
    response_graph,
)
from tools.models import Category

STOP_IMPLANT = FollowUp("stop_implant", any_uncontained, (implant_kills, process_kills))


def build(deps: PlaybookDeps) -> StateGraph[Any]:
    return response_graph(deps, [STOP_IMPLANT])


PLAYBOOK = Playbook(
    id="command_and_control",
    title="Command and control: block the endpoints, isolate, kill the implant",
    categories=frozenset({Category.COMMAND_AND_CONTROL}),
    allowed_actions=HOST_RESPONSE,
    irreversible=HOST_RESPONSE_IRREVERSIBLE,
    build=build,
)
