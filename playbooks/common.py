"""Nodes and helpers most playbooks share: investigate, contain through the remediation agent,
observe the outcomes and follow up, summarise. Authors may reuse them or write their own.

`response_graph` builds the usual shape, START -> investigate -> contain -> follow-ups -> summarise
-> END, where each `FollowUp` runs only when its condition holds on the outcomes so far and
proposes what its `Proposer`s return (kinds outside the playbook's `allowed_actions` dropped,
actions that already took effect skipped). The proposers below are the observe-and-decide-again
moves the built-in playbooks share.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from langgraph.graph import END, START, StateGraph

from agents.degraded import degraded_line
from agents.estate import is_reset_only_account
from agents.investigation.graph import run_investigation
from agents.models import (
    ActionOutcome,
    InvestigationInput,
    InvestigationReport,
    OutcomeStatus,
    ProposedAction,
)
from agents.remediation.graph import run_remediation
from agents.remediation.nodes import fallback_kills, kill_candidates, known_processes
from agents.verdict_category import decided_category
from playbooks.base import PlaybookDeps, PlaybookState, propose
from tools.actions import (
    ActionKind,
    DisableAccount,
    KillProcess,
    QuarantineFile,
    ResetCredentials,
    RevokeSessions,
)
from tools.models import Verdict

# What the remediation agent may propose for any hands-on stage the investigation can settle on
# (`agents/verdict_category.py` moves an incident to credential access, lateral movement or
# persistence on proven findings): the response follows the decided category, so a playbook
# routed on triage's category allows these whatever its own emphasis.
HOST_RESPONSE: frozenset[ActionKind] = frozenset(
    {
        ActionKind.ISOLATE_HOST,
        ActionKind.KILL_PROCESS,
        ActionKind.REMOVE_PERSISTENCE,
        ActionKind.QUARANTINE_FILE,
        ActionKind.BLOCK_IP,
        ActionKind.BLOCK_DOMAIN,
        ActionKind.DISABLE_ACCOUNT,
        ActionKind.PATCH,  # the exploited CVE's fix (agents/remediation/patching.py)
    }
)
# Of those, the kinds without an inverse, declared as such (`Playbook.irreversible`).
HOST_RESPONSE_IRREVERSIBLE: frozenset[ActionKind] = frozenset(
    {ActionKind.KILL_PROCESS, ActionKind.REMOVE_PERSISTENCE}
)
# The lesser containment of an identity that stays usable: cut its sessions, void its secret
# (neither has an inverse).
IDENTITY_FALLBACK: frozenset[ActionKind] = frozenset(
    {ActionKind.REVOKE_SESSIONS, ActionKind.RESET_CREDENTIALS}
)
NOT_DONE = (OutcomeStatus.DENIED, OutcomeStatus.EXPIRED, OutcomeStatus.FAILED)
REFUSED = (OutcomeStatus.DENIED, OutcomeStatus.EXPIRED)

Proposer = Callable[[PlaybookState], list[ProposedAction]]
Condition = Callable[[PlaybookState], bool]


async def investigate(deps: PlaybookDeps, state: PlaybookState) -> dict[str, Any]:
    report = await run_investigation(
        deps.agents,
        InvestigationInput(
            incident_id=state["incident_id"], alerts=state["alerts"], triage=state["triage"]
        ),
    )
    return {"report": report}


async def contain(deps: PlaybookDeps, state: PlaybookState) -> dict[str, Any]:
    report = state.get("report")
    assert report is not None
    plan = await run_remediation(
        deps.agents, state["triage"], report, deps.playbook.allowed_actions, state["alerts"]
    )
    return {"outcomes": propose(deps, plan.proposals), "rejected": plan.rejected}


def done(outcomes: list[ActionOutcome]) -> list[ActionOutcome]:
    ok = (OutcomeStatus.EXECUTED, OutcomeStatus.ALREADY_IN_STATE)
    return [o for o in outcomes if o.status in ok]


def _report(state: PlaybookState) -> InvestigationReport:
    report = state.get("report")
    assert report is not None, "a follow-up runs after the investigation"
    return report


def _malicious(state: PlaybookState) -> bool:
    return _report(state).verdict is Verdict.MALICIOUS


# Conditions on the outcomes so far.


def not_done_targets(state: PlaybookState, kind: ActionKind, statuses=NOT_DONE) -> list[str]:
    """Targets of `kind` whose action ended in `statuses` and never took effect since."""
    outcomes = [o for o in state.get("outcomes", []) if o.action.kind is kind]
    took_effect = {o.action.target.lower() for o in done(outcomes)}
    return sorted(
        {
            o.action.target
            for o in outcomes
            if o.status in statuses and o.action.target.lower() not in took_effect
        }
    )


def uncontained_hosts(state: PlaybookState) -> list[str]:
    """Hosts whose isolation was denied, expired or failed (and never executed since)."""
    return not_done_targets(state, ActionKind.ISOLATE_HOST)


def isolation_refused(state: PlaybookState) -> bool:
    """An isolation was denied or expired: a human or the policy kept the host online."""
    return bool(not_done_targets(state, ActionKind.ISOLATE_HOST, REFUSED))


def any_uncontained(state: PlaybookState) -> bool:
    return bool(uncontained_hosts(state))


def is_malicious(state: PlaybookState) -> bool:
    """The investigation's verdict (a benign one proposes nothing more)."""
    return _malicious(state)


def identity_left_usable(state: PlaybookState) -> bool:
    """A host stayed online or an account stayed enabled (refused, expired or failed)."""
    return bool(uncontained_hosts(state) or not_done_targets(state, ActionKind.DISABLE_ACCOUNT))


# Proposers: pure functions of the state, so a node re-run on resume proposes the same.


def process_kills(state: PlaybookState) -> list[ProposedAction]:
    """The alerting attacker processes on hosts whose isolation did not happen (the stages
    whose labelling rule says kill: execution, evasion, persistence, impact)."""
    return fallback_kills(state["triage"], _report(state), uncontained_hosts(state))


def _attacker_kills(state: PlaybookState, hosts: set[str] | None, why: str) -> list[ProposedAction]:
    if not _malicious(state):
        return []
    return [
        ProposedAction(
            action=KillProcess(target=process),
            rationale=why.format(host=process.split(":", 1)[0]),
            evidence=[f"{process}: an alerting process the investigation found the attacker's"],
        )
        for process in kill_candidates(state["triage"], _report(state))
        if hosts is None or process.split(":", 1)[0].lower() in hosts
    ]


def attacker_process_kills(state: PlaybookState) -> list[ProposedAction]:
    """The alerting processes the investigation found the attacker's, on hosts whose isolation
    did not happen, whatever the category (a web shell's shells on a server left online)."""
    hosts = {h.lower() for h in uncontained_hosts(state)}
    return _attacker_kills(state, hosts, "isolation of {host} did not happen: stop the process")


def every_attacker_process_kill(state: PlaybookState) -> list[ProposedAction]:
    """The alerting processes the investigation found the attacker's, isolated host or not: an
    isolation stops the spread, not what the process does to the host itself (an encryptor)."""
    return _attacker_kills(state, None, "isolation does not stop it on {host}: stop it now")


def implant_kills(state: PlaybookState) -> list[ProposedAction]:
    """The implants (attacker processes that talked to an attacker endpoint) and the processes
    they injected into, on hosts whose isolation did not happen: whatever the category, nothing
    else cuts a channel that a block did not."""
    report = _report(state)
    if not _malicious(state):
        return []
    hosts = {h.lower() for h in uncontained_hosts(state)}
    return [
        ProposedAction(
            action=KillProcess(target=process),
            rationale=f"isolation of {process.split(':', 1)[0]} did not happen: stop the implant",
            evidence=[f"{process} talked to an attacker endpoint or was injected"],
        )
        for process in known_processes(report)
        if process.split(":", 1)[0].lower() in hosts
    ]


def identity_fallback(state: PlaybookState) -> list[ProposedAction]:
    """Revoke the sessions and reset the secret of every compromised identity (krbtgt, reset
    with the containment already, has no sessions of its own)."""
    if not _malicious(state):
        return []
    report = _report(state)
    users = [u for u in report.compromised_identities if not is_reset_only_account(u)]
    return [
        ProposedAction(action=action, rationale=why, evidence=["containment was not executed"])
        for user in users
        for action, why in (
            (RevokeSessions(target=user), "still usable: cut the stolen sessions"),
            (ResetCredentials(target=user), "still usable: make the stolen secret useless"),
        )
    ]


def disable_compromised(state: PlaybookState) -> list[ProposedAction]:
    """Disable the accounts the investigation found used (krbtgt is reset, never disabled)."""
    if not _malicious(state):
        return []
    return [
        ProposedAction(
            action=DisableAccount(target=user),
            rationale="its host stays online: stop the attacker acting with this account",
            evidence=["isolation was not executed"],
        )
        for user in _report(state).compromised_identities
        if not is_reset_only_account(user)
    ]


# Where the operating system keeps its own binaries: a hash the investigation tied to the attack
# there is a living-off-the-land tool (wevtutil, conhost, rundll32), never a file to take away.
SYSTEM_DIRS = ("c:\\windows\\", "/usr/", "/bin/", "/sbin/", "/lib/", "/system/")


def confirmed_files(state: PlaybookState) -> list[ProposedAction]:
    """Quarantine the alerts' files whose hash the investigation confirmed malicious and that the
    alerts saw outside the system's own directories (a payload, an attachment, an encryptor);
    never a file only an alert named, never a system binary the attacker borrowed."""
    if not _malicious(state):
        return []
    confirmed = {h.lower() for h in _report(state).malicious_sha256}
    outside = {
        (alert.entities.file.sha256 or "").lower()
        for alert in state["alerts"]
        if alert.entities.file is not None
        and alert.entities.file.path
        and not alert.entities.file.path.lower().startswith(SYSTEM_DIRS)
    }
    return [
        ProposedAction(
            action=QuarantineFile(target=target),
            rationale="attacker file confirmed by the investigation: take it off the host",
            evidence=[target],
        )
        for target in state["triage"].entities.files
        if (sha := target.split(":", 1)[-1].lower()) in confirmed and sha in outside
    ]


@dataclass(frozen=True)
class FollowUp:
    """A node after the containment: when `when` holds, propose what `proposers` return."""

    step: str
    when: Condition
    proposers: tuple[Proposer, ...]


async def follow_up(deps: PlaybookDeps, spec: FollowUp, state: PlaybookState) -> dict[str, Any]:
    took_effect = {(o.action.kind, o.action.target.lower()) for o in done(state["outcomes"])}
    seen: set[tuple[ActionKind, str]] = set()
    proposals: list[ProposedAction] = []
    for proposer in spec.proposers:
        for proposal in proposer(state):
            key = (proposal.action.kind, proposal.action.target.lower())
            if proposal.action.kind in deps.playbook.allowed_actions and key not in (
                seen | took_effect
            ):
                seen.add(key)
                proposals.append(proposal)
    return {"outcomes": propose(deps, proposals)}


def summary_lines(report: InvestigationReport | None, outcomes: list[ActionOutcome]) -> list[str]:
    lines: list[str] = []
    if report is not None:
        lines.append(
            f"verdict {report.verdict.value} ({report.confidence:.2f}), "
            f"corroborated={report.corroborated}"
        )
        if report.category is not None:
            # the category the evidence decided, and why (triage's was the proposal)
            lines.append(f"category {report.category.value}: {report.category_reason}")
        if report.degraded:
            lines.append(degraded_line(report.evidence_gaps))
        if report.compromised_assets:
            lines.append("compromised assets: " + ", ".join(report.compromised_assets))
        if report.compromised_identities:
            lines.append("compromised identities: " + ", ".join(report.compromised_identities))
        if report.attacker_ips or report.attacker_domains:
            lines.append(
                "attacker endpoints: " + ", ".join(report.attacker_ips + report.attacker_domains)
            )
        if report.model_tool_calls:  # the investigation model's loop: labelled, beside the facts
            answered = sum(c.outcome == "answered" for c in report.model_tool_calls)
            lines.append(
                f"model-generated investigation: {len(report.model_tool_calls)} tool calls, "
                f"{answered} answered"
            )
            lines += [f.summary for f in report.model_findings[:5]]
    for outcome in outcomes:
        lines.append(f"{outcome.action.kind.value} {outcome.action.target}: {outcome.status.value}")
    return lines


async def summarise(deps: PlaybookDeps, state: PlaybookState) -> dict[str, Any]:
    """The playbook, the category the response followed, what took effect."""
    outcomes = state.get("outcomes", [])
    report = state.get("report")
    triage = state["triage"]
    category = decided_category(triage, report) if report is not None else triage.category
    lines = [
        f"{deps.playbook.id.replace('_', ' ')} playbook (response for {category.value})",
        *summary_lines(report, outcomes),
        f"{len(done(outcomes))} of {len(outcomes)} proposed actions took effect",
    ]
    return {"summary": "\n".join(lines)}


INVESTIGATE, CONTAIN, SUMMARISE = "investigate", "contain", "summarise"


def response_graph(deps: PlaybookDeps, follow_ups: Sequence[FollowUp] = ()) -> StateGraph[Any]:
    """START -> investigate -> contain -> each follow-up whose condition holds -> summarise."""
    graph = StateGraph(PlaybookState)
    graph.add_node(INVESTIGATE, partial(investigate, deps))
    graph.add_node(CONTAIN, partial(contain, deps))
    graph.add_node(SUMMARISE, partial(summarise, deps))
    for spec in follow_ups:
        graph.add_node(spec.step, partial(follow_up, deps, spec))
    graph.add_edge(START, INVESTIGATE)
    graph.add_edge(INVESTIGATE, CONTAIN)
    for position, after in enumerate([CONTAIN, *(f.step for f in follow_ups)]):
        later = list(follow_ups[position:])
        if not later:
            graph.add_edge(after, SUMMARISE)
            continue
        graph.add_conditional_edges(
            after, partial(_next_step, later), [*(f.step for f in later), SUMMARISE]
        )
    graph.add_edge(SUMMARISE, END)
    return graph


def _next_step(later: list[FollowUp], state: PlaybookState) -> str:
    return next((f.step for f in later if f.when(state)), SUMMARISE)
