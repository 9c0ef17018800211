"""Phishing and mailbox compromise, told by technique (the categories of the recorded-incident
format have no phishing: see `playbooks/routing.yaml`).

1. contain per the category the evidence decided (a payload that ran: isolate its host, block
   the endpoints it reached);
2. eradicate: block the lure's domain that the phishing alerts name, quarantine the attachment
   the investigation confirmed malicious;
3. secure the mailbox, only when the evidence says the account was taken (a mailbox technique:
   collection, hiding or forwarding rules, delegates; credential phishing; or credentials proven
   taken): revoke the sessions the harvested password or token opened and reset the password. A
   forwarding or hiding rule lives on the mailbox, which no action kind reaches: the analyst
   removes it. A payload that came by mail and ran is contained on its host like any other;
4. when the host stayed online, kill the implant and the attacker's alerting processes.

Topology: START -> investigate -> contain -> eradicate -> (secure_mailbox when the account was
taken) -> (stop_processes when an isolation did not happen) -> summarise -> END
"""

from __future__ import annotations

from typing import Any

from langgraph.graph import StateGraph

from agents.estate import is_shared_service
from agents.models import ProposedAction
from playbooks.base import Playbook, PlaybookDeps, PlaybookState
from playbooks.common import (
    HOST_RESPONSE,
    HOST_RESPONSE_IRREVERSIBLE,
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
from tools.actions import BlockDomain
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
    return _has(state["triage"].techniques, MAILBOX_TAKEN)


PHISHING = ("T1566", "T1598")


def _has(techniques: list[str], wanted: tuple[str, ...]) -> bool:
    return any(
        t.upper() == want or t.upper().startswith(want + ".") for t in techniques for want in wanted
    )


def phishing_domains(state: PlaybookState) -> list[ProposedAction]:
    """Block the domains the phishing alerts name (the lure's link, the sender's domain): the
    investigation confirms the endpoints a process reached, a mail's link may never have been
    reached by one. Never a shared internet service (a lure hosted on a file-sharing platform is
    taken down by its provider, not blocked for everyone)."""
    if not is_malicious(state):
        return []
    extracted = {d.lower() for d in state["triage"].entities.domains}
    named = {
        alert.entities.domain.lower()
        for alert in state["alerts"]
        if alert.entities.domain and _has([a.technique for a in alert.attacks], PHISHING)
    }
    return [
        ProposedAction(
            action=BlockDomain(target=domain),
            rationale="the phishing lure's domain",
            evidence=[f"named by a phishing alert: {domain}"],
        )
        for domain in sorted(named & extracted)
        if not is_shared_service(domain)
    ]


ERADICATE = FollowUp("eradicate", is_malicious, (phishing_domains, confirmed_files))
SECURE_MAILBOX = FollowUp("secure_mailbox", mailbox_taken, (identity_fallback,))
STOP_PROCESSES = FollowUp("stop_processes", any_uncontained, (implant_kills, process_kills))


def build(deps: PlaybookDeps) -> StateGraph[Any]:
    return response_graph(deps, [ERADICATE, SECURE_MAILBOX, STOP_PROCESSES])


PLAYBOOK = Playbook(
    id="phishing",
    title="Phishing and mailbox compromise: contain, revoke and reset the owner, quarantine",
    categories=frozenset({Category.INITIAL_ACCESS}),
    allowed_actions=HOST_RESPONSE | IDENTITY_FALLBACK,
    irreversible=HOST_RESPONSE_IRREVERSIBLE | IDENTITY_FALLBACK,
    build=build,
)
