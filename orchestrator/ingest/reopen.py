"""What a reopened incident's new run starts from: an `IncidentCarry`, the same hand-over a long
run gives the run it continues as, built from what the closed run left (its result, the store's
triage, ticket and ledger).

The new run resumes where a continued run does: it takes in the late alerts (one note on the
ticket listing them, then a re-triage, since they bring a new entity or a higher severity), then
runs a fresh playbook pass over all the incident's alerts. Everything the incident decided before
is recalled, never executed or asked again; the ticket is the same one. Its pass index, comment
numbers and ticketing-event numbers start at `number * REOPEN_SPAN`, so the reopened run's
checkpointer thread (`<incident>#pass<n>`), comment keys (`<incident>:<n>`) and notice keys never
meet those of an earlier run (a run would need a million comments to reach the next span).
"""

from __future__ import annotations

from agents.models import ActionOutcome, ExtractedEntities, OutcomeStatus, TriageResult
from orchestrator.models import (
    IncidentCarry,
    IncidentResult,
    TicketOutboxCarry,
    TicketRef,
    TicketWork,
    TicketWorkKind,
)
from orchestrator.store.records import ActionRecord, ActionStatus, IncidentRecord
from tools.actions import ActionKind
from tools.models import Alert

REOPEN_SPAN = 1_000_000
MAX_ENTITIES = 50
_DETAIL = 1_024


class CannotReopen(Exception):
    """The closed run left too little to resume from (no recorded triage, no ticket)."""


def reopen_carry(
    *,
    incident: IncidentRecord,
    result: IncidentResult,
    seen: list[Alert],
    ticket_id: str | None,
    ledger: list[ActionRecord],
    number: int,
) -> IncidentCarry:
    """The carry of reopen `number` (1, 2, ...): `seen` are the alerts the closed runs handled."""
    base = number * REOPEN_SPAN
    triage = recorded_triage(incident, seen)
    ticket = TicketRef(incident_id=incident.id, ticket_id=ticket_id) if ticket_id else None
    tickets: TicketOutboxCarry | None = None
    if result.ticketing is not None:
        opening = [] if ticket else [TicketWork(kind=TicketWorkKind.OPEN, text=incident.title)]
        tickets = TicketOutboxCarry(
            ticket=ticket, queue=opening, next_seq=base + 1, events=base, view=result.ticketing
        )
    elif ticket is None:  # a run that kept its ticket itself needs one to comment on
        raise CannotReopen("the incident has no ticket to comment on")
    last = result.executed[-1] if result.executed else None
    uids = [alert.uid for alert in seen]
    return IncidentCarry(
        started_at=result.started_at,
        alert_uids=uids,
        handled_uids=uids,
        ticket=ticket,
        tickets=tickets,
        triage=triage,
        pass_triage=triage,
        pass_index=base,
        earlier_outcomes=earlier_outcomes(result, ledger),
        executed=result.executed,
        denied=result.denied,
        approvals_requested=result.approvals_requested,
        isolations=sum(e.action.kind is ActionKind.ISOLATE_HOST for e in result.executed),
        approval_wait_s=last.approval_wait_s if last else 0.0,
        execution_s=last.execution_s if last else 0.0,
    )


def recorded_triage(incident: IncidentRecord, seen: list[Alert]) -> TriageResult:
    """The triage as the store recorded it, with the entities of the alerts it saw. The new run
    re-triages before its pass starts (what reopens an incident is exactly what re-triages an
    open one), so this stands in only for the comparison that decides it."""
    if (
        incident.verdict is None
        or incident.severity is None
        or incident.category is None
        or not incident.playbook
    ):
        raise CannotReopen("no triage was recorded for the incident")
    hosts = [a.entities.host for a in seen if a.entities.host]
    users = [a.entities.user for a in seen if a.entities.user]
    closed = f" at {incident.closed_at:%Y-%m-%d %H:%M:%SZ}" if incident.closed_at else ""
    return TriageResult(
        verdict=incident.verdict,
        confidence=incident.confidence or 0.0,
        severity=incident.severity,
        category=incident.category,
        playbook_id=incident.playbook,
        entities=ExtractedEntities(
            hosts=list(dict.fromkeys(hosts))[:MAX_ENTITIES],
            users=list(dict.fromkeys(users))[:MAX_ENTITIES],
        ),
        rationale=[f"the triage recorded before the incident closed{closed}"],
    )


def earlier_outcomes(result: IncidentResult, ledger: list[ActionRecord]) -> list[ActionOutcome]:
    """Every decision the incident took: executed, refused (denied, expired, by policy), and the
    ledger's failures (a human was told). The reopened pass answers a proposal of any of them
    with this outcome."""
    outcomes = [
        ActionOutcome(
            action=e.action,
            status=OutcomeStatus.ALREADY_IN_STATE if e.already_in_state else OutcomeStatus.EXECUTED,
            risk=e.risk,
            detail="executed before the incident was reopened",
        )
        for e in result.executed
    ]
    outcomes += [
        ActionOutcome(
            action=d.action, status=OutcomeStatus.DENIED, risk=d.risk, detail=d.reason[:_DETAIL]
        )
        for d in result.denied
    ]
    decided = {(o.action.kind, o.action.target.lower()) for o in outcomes}
    outcomes += [
        ActionOutcome(
            action=r.action, status=OutcomeStatus.FAILED, risk=r.risk, detail=r.outcome[:_DETAIL]
        )
        for r in ledger
        if r.status in (ActionStatus.FAILED, ActionStatus.ABANDONED)
        and (r.kind, r.target.lower()) not in decided
    ]
    return outcomes
