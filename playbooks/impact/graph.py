"""Impact (ransomware-like: encryption, shadow copies deleted, services stopped, data wiped):
speed over precision. Isolate every affected host, kill the implant and the alerting attacker
processes at once (an encryptor is not left running until release), quarantine the payloads the
investigation confirmed, remove what was planted; when an isolation did not happen, disable the
accounts used, since ransomware spreads with them.

Topology: START -> investigate -> contain -> eradicate (quarantine confirmed payloads) ->
(stop_the_spread when an isolation did not happen) -> summarise -> END
"""

from __future__ import annotations

from typing import Any

from langgraph.graph import StateGraph

from playbooks.base import Playbook, PlaybookDeps
from playbooks.common import (
    HOST_RESPONSE,
    FollowUp,
    any_uncontained,
    confirmed_files,
    disable_compromised,
    implant_kills,
    is_malicious,
    process_kills,
    response_graph,
)
from tools.models import Category

ERADICATE = FollowUp("eradicate", is_malicious, (confirmed_files,))
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
    build=build,
)
