"""Hands-on-keyboard activity, whatever the stage: contain per the labelling rules, observe, fall
back to stopping the attacker's processes on hosts whose isolation did not happen, summarise.

The routing file's default (a category a deployment's routing leaves out lands here) and the
playbook of incidents routed before the per-category playbooks (their histories name it).

The known attacker processes are killed along with the isolation of their host (the spec's
"isolate, plus kill where the artefact is known"); a kill that was not done (denied, expired,
failed) is proposed again once the workflow reports the isolation of its host not done either,
since then nothing else stops the process.

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
    id="hands_on_keyboard",
    title="Hands on keyboard: isolate, kill, remove persistence, block infrastructure",
    categories=frozenset(
        {
            Category.EXECUTION,
            Category.PERSISTENCE,
            Category.LATERAL_MOVEMENT,
            Category.DEFENSE_EVASION,
            Category.COMMAND_AND_CONTROL,
            Category.EXFILTRATION,
            Category.IMPACT,
            Category.INITIAL_ACCESS,
        }
    ),
    allowed_actions=HOST_RESPONSE,
    irreversible=HOST_RESPONSE_IRREVERSIBLE,
    build=build,
)
