"""Exfiltration (and the collection that stages it): block the destinations and isolate the
host the data leaves from; when the isolation did not happen, kill the implant and disable the
accounts the investigation found used, so the staging cannot go on through another host.

Topology: START -> investigate -> contain -> (stop_the_flow when an isolation did not happen)
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
    disable_compromised,
    implant_kills,
    process_kills,
    response_graph,
)
from tools.models import Category

STOP_THE_FLOW = FollowUp(
    "stop_the_flow", any_uncontained, (implant_kills, process_kills, disable_compromised)
)


def build(deps: PlaybookDeps) -> StateGraph[Any]:
    return response_graph(deps, [STOP_THE_FLOW])


PLAYBOOK = Playbook(
    id="exfiltration",
    title="Exfiltration: block the destinations, isolate, cut the account",
    categories=frozenset({Category.EXFILTRATION}),
    allowed_actions=HOST_RESPONSE,
    irreversible=HOST_RESPONSE_IRREVERSIBLE,
    build=build,
)
