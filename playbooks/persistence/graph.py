"""Persistence: eradication is the point. Isolate the host, remove every autostart artefact the
investigation named (a Run key, a service, a scheduled task, a WMI consumer, a startup file, a
logon script), kill the implant; when the isolation did not happen, stop the alerting attacker
processes, since the artefact alone being removed leaves what it started running.

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
    id="persistence",
    title="Persistence: isolate, remove the autostart artefacts, kill",
    categories=frozenset({Category.PERSISTENCE}),
    allowed_actions=HOST_RESPONSE,
    irreversible=HOST_RESPONSE_IRREVERSIBLE,
    build=build,
)
