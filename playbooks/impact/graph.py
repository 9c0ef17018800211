"""Impact (ransomware-like: encryption, shadow copies deleted, services stopped, data wiped):
speed over precision. Isolate every affected host and kill the implant (the containment), then
kill the attacker's alerting processes on every host, isolated or not (an isolation stops the
spread, not an encryptor working on the host's own files), quarantine the payloads the
investigation confirmed; when an isolation did not happen, disable the accounts used, since
ransomware spreads with them.

Topology: START -> investigate -> contain -> eradicate (kill the attacker's processes, quarantine
confirmed payloads) ->
(stop_the_spread when an isolation did not happen) -> summarise -> END
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
    confirmed_files,
    disable_compromised,
    every_attacker_process_kill,
    implant_kills,
    is_malicious,
    process_kills,
    response_graph,
)
from tools.models import Category

ERADICATE = FollowUp("eradicate", is_malicious, (every_attacker_process_kill, confirmed_files))
STOP_THE_SPREAD = FollowUp(
    "stop_the_spread", any_uncontained, (process_kills, implant_kills, disable_compromised)
)


def build(deps: PlaybookDeps) -> StateGraph[Any]:
    return response_graph(deps, [ERADICATE, STOP_THE_SPREAD])


PLAYBOOK = Playbook(
    id="impact",
    title="Impact (ransomware-like): isolate fast, kill, quarantine, cut the account",
    categories=frozenset({Category.IMPACT}),
    allowed_actions=HOST_RESPONSE,
    irreversible=HOST_RESPONSE_IRREVERSIBLE,
    build=build,
)
