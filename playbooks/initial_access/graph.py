"""Initial access by exploitation of a public-facing service: isolate the server and block the
source (the labelling rule), remove the web shell or other artefact the investigation names,
quarantine the dropped payloads it confirmed; a public server's isolation is often refused (its
criticality asks for a human), so then kill the implant and the attacker processes on it.

Topology: START -> investigate -> contain -> eradicate (quarantine confirmed payloads) ->
(stop_processes when an isolation did not happen) -> summarise -> END
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
    attacker_process_kills,
    confirmed_files,
    implant_kills,
    is_malicious,
    response_graph,
)
from tools.models import Category

ERADICATE = FollowUp("eradicate", is_malicious, (confirmed_files,))
STOP_PROCESSES = FollowUp(
    "stop_processes", any_uncontained, (implant_kills, attacker_process_kills)
)


def build(deps: PlaybookDeps) -> StateGraph[Any]:
    return response_graph(deps, [ERADICATE, STOP_PROCESSES])


PLAYBOOK = Playbook(
    id="initial_access",
    title="Initial access (public-facing exploit): isolate the server, block the source, eradicate",
    categories=frozenset({Category.INITIAL_ACCESS}),
    allowed_actions=HOST_RESPONSE,
    irreversible=HOST_RESPONSE_IRREVERSIBLE,
    build=build,
)
