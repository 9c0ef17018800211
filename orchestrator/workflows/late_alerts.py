"""Alerts that join an incident after its triage, and the playbook passes they can start.

Ingestion keeps signalling `alerts_added` into an open incident. At each round boundary (before
every playbook step, and once more before closing) the workflow hands the alerts it has not yet
handled to the `incidents.alerts_joined` activity, notes them on the ticket, and re-triages when
one names a host, account or address the incident did not have, or is more severe than the
triage. The running playbook pass is not interrupted: its next round gets the new triage (the
gate's known targets); once it finishes, a re-triage that changed the facts (entities, severity,
category, verdict or playbook) starts a follow-up pass of the playbook the new triage chose, on
its own checkpointer thread, over all the incident's alerts. A proposal the incident already
decided in an earlier pass is answered with that decision, never executed or asked again.
Workflow code: deterministic.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from agents.models import ActionOutcome, OutcomeStatus, TriageResult
    from orchestrator.models import AlertsJoinedResult
    from orchestrator.text import defang
    from tools.actions import Action

PATCH = "alerts-after-triage-v1"  # workflows recorded before late alerts were handled


@dataclass
class PlaybookPass:
    """One run of a playbook graph from its start to its end, over one checkpointer thread."""

    triage: TriageResult  # the triage it started from
    index: int = 0
    started: bool = False
    rounds: int = 0
    resume: list[ActionOutcome] | None = None
    outcomes: list[ActionOutcome] = field(default_factory=list)

    def thread_id(self, incident_id: str) -> str | None:
        """The first pass keeps the incident's own thread (checkpoints of earlier releases)."""
        return None if self.index == 0 else f"{incident_id}#pass{self.index + 1}"


def triage_changed(before: TriageResult, after: TriageResult) -> bool:
    """Whether a re-triage changed what a playbook acts on (not merely its wording)."""
    return (
        before.playbook_id != after.playbook_id
        or before.category is not after.category
        or before.verdict is not after.verdict
        or before.severity is not after.severity
        or _entity_set(before) != _entity_set(after)
    )


def _entity_set(triage: TriageResult) -> set[str]:
    e = triage.entities
    return {v.lower() for v in (*e.hosts, *e.users, *e.ips, *e.domains)}


def action_key(action: Action) -> str:
    return f"{action.kind.value}:{action.target.lower()}"


def recalled(action: Action, earlier: ActionOutcome) -> ActionOutcome:
    """The answer to a proposal an earlier pass already decided: done stays done, refused stays
    refused (nothing is executed or asked again)."""
    done = earlier.status in (OutcomeStatus.EXECUTED, OutcomeStatus.ALREADY_IN_STATE)
    return ActionOutcome(
        action=action,
        status=OutcomeStatus.ALREADY_IN_STATE if done else earlier.status,
        risk=earlier.risk,
        detail=f"decided earlier in this incident: {earlier.status.value}",
    )


def joined_note(result: AlertsJoinedResult, retriage: bool) -> str:
    lines = [f"{len(result.joined)} alert(s) joined this incident after triage:"]
    for alert in result.joined[:20]:
        where = " / ".join(defang(v) for v in (alert.host, alert.user) if v) or "-"
        new = f" (new: {defang(', '.join(alert.new_entities))})" if alert.new_entities else ""
        lines.append(f"- [{alert.severity.value}] {defang(alert.title)} on {where}{new}")
    if len(result.joined) > 20:
        lines.append(f"- ... and {len(result.joined) - 20} more")
    if result.missing:
        lines.append(f"{len(result.missing)} signalled alert(s) not found in the store")
    lines.append("Re-triaging." if retriage else "No new entity, no higher severity: no re-triage.")
    return "\n".join(lines)
