"""Defense evasion (logging switched off, a signed binary proxying a payload, injection, a
tampered audit policy): the host's own records can no longer be trusted, so it is isolated, the
injected and implant processes killed, planted artefacts removed; when the isolation did not
happen, the alerting attacker processes are stopped.

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
    process_kills,
    response_graph,
)
from tools.models import Category

STOP_PROCESSES = FollowUp("stop_processes", any_uncontained, (process_kills,))


def build(deps: PlaybookDeps) -> StateGraph[Any]:
    return response_graph(deps, [STOP_PROCESSES])


PLAYBOOK = Playbook(
    id="defense_evasion",
    title="Defense evasion: isolate the blinded host, kill, remove artefacts",
    categories=frozenset({Category.DEFENSE_EVASION}),
    allowed_actions=HOST_RESPONSE,
    irreversible=HOST_RESPONSE_IRREVERSIBLE,
    build=build,
)
