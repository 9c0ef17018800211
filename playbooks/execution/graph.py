"""Execution: isolate the host, kill the implant and the processes it injected into, remove
what it planted; when the isolation did not happen, stop the alerting attacker processes and any
implant still running on that host.

Topology: START -> investigate -> contain -> (stop_processes when an isolation did not happen)
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

STOP_PROCESSES = FollowUp("stop_processes", any_uncontained, (process_kills, implant_kills))


def build(deps: PlaybookDeps) -> StateGraph[Any]:
    return response_graph(deps, [STOP_PROCESSES])


PLAYBOOK = Playbook(
    id="execution",
    title="Execution: isolate, kill the implant, remove what it planted",
    categories=frozenset({Category.EXECUTION}),
    allowed_actions=HOST_RESPONSE,
    irreversible=HOST_RESPONSE_IRREVERSIBLE,
    build=build,
)
