"""Phishing and mailbox compromise (routed by technique: the categories of the recorded-incident
format have no phishing, see `playbooks/routing.yaml`): contain per the category the evidence
decided (a payload that ran: isolate, block the sender's infrastructure), then secure the mailbox
owner whose account the investigation found used: revoke the sessions a harvested password or
token opened and reset the password (a forwarding or hiding rule lives on the mailbox, which no
action kind reaches), but only when the evidence says the account was taken (a mailbox
technique, credential phishing, or credentials proven taken): a payload that came by mail and ran
is contained on its host like any other; quarantine the attachment the investigation confirmed;
when the host stayed online, kill the implant.

Topology: START -> investigate -> contain -> eradicate -> (secure_mailbox when the account was
taken) -> (stop_processes when an isolation did not happen) -> summarise -> END
"""

from __future__ import annotations

from typing import Any

from langgraph.graph import StateGraph

from playbooks.base import Playbook, PlaybookDeps, PlaybookState
from playbooks.common import (
    HOST_RESPONSE,
    IDENTITY_FALLBACK,
    FollowUp,
    any_uncontained,
    confirmed_files,
    identity_fallback,
    implant_kills,
    is_malicious,
    process_kills,
    response_graph,
)
from tools.models import Category

# Techniques that say the account or the mailbox itself was taken, not only that a payload came by
# mail: phishing for information (a harvested password), email collection, hiding and forwarding
# rules, delegate permissions.
MAILBOX_TAKEN = ("T1598", "T1114", "T1564.008", "T1098.002")


def mailbox_taken(state: PlaybookState) -> bool:
    """The account behind the mailbox is in the attacker's hands: a mailbox technique among the
    alerts', or the investigation proved credentials taken."""
    if not is_malicious(state):
        return False
    report = state.get("report")
    if report is not None and report.category is Category.CREDENTIAL_ACCESS:
        return True
    return any(
        t.upper() == want or t.upper().startswith(want + ".")
        for t in state["triage"].techniques
        for want in MAILBOX_TAKEN
    )


ERADICATE = FollowUp("eradicate", is_malicious, (confirmed_files,))
SECURE_MAILBOX = FollowUp("secure_mailbox", mailbox_taken, (identity_fallback,))
STOP_PROCESSES = FollowUp("stop_processes", any_uncontained, (implant_kills, process_kills))


def build(deps: PlaybookDeps) -> StateGraph[Any]:
    return response_graph(deps, [ERADICATE, SECURE_MAILBOX, STOP_PROCESSES])


PLAYBOOK = Playbook(
    id="phishing",
    title="Phishing and mailbox compromise: contain, revoke and reset the owner, quarantine",
    categories=frozenset({Category.INITIAL_ACCESS}),
    allowed_actions=HOST_RESPONSE | IDENTITY_FALLBACK,
    build=build,
)
