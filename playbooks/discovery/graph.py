"""Discovery: the labelling rules call for a ticket, not containment, for discovery alone; the
remediation agent proposes nothing for it. When the investigation proves more (credentials taken,
a movement, an autostart artefact: `agents/verdict_category.py`), the response follows the
category it decided, as on every playbook.

Topology: START -> investigate -> contain (nothing for discovery alone) -> (stop_processes when an
isolation did not happen) -> summarise -> END
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
    id="discovery",
    title="Discovery: a ticket, containment only for what the investigation proves beyond it",
    categories=frozenset({Category.DISCOVERY}),
    allowed_actions=HOST_RESPONSE,
    irreversible=HOST_RESPONSE_IRREVERSIBLE,
    build=build,
)
