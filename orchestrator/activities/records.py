"""Activities that keep the ticket, the incident row and the audit log in step with the workflow.

A ticket is opened at triage (found again by the incident key, never opened twice), updated with
findings, every action and every alert that joins later, and closed with a summary; closing an
incident anchors the audit chain. The workflow's ticket outbox (`workflows/tickets.py`) calls the
`tickets.*` activities off the containment path, retrying them without limit: a comment carries
its idempotency key, and any retry looks for it on the ticket before posting again. Closing the
incident in the store (`incidents.close`) then never waits for the ticketing vendor.
"""

from __future__ import annotations

from datetime import UTC, datetime

from temporalio import activity

from orchestrator.activities.errors import activity_source, vendor_call
from orchestrator.activities.narrative import ticket_text
from orchestrator.activities.policy_audit import audit_policy_decision
from orchestrator.backends import Backends
from orchestrator.models import (
    AlertsJoinedInput,
    AlertsJoinedResult,
    CloseIncidentInput,
    JoinedAlert,
    OpenTicketInput,
    PolicyRecord,
    TicketingStatusInput,
    TicketNote,
    TicketRef,
)
from orchestrator.observability.metrics import observe_contained
from orchestrator.observability.tracing import current_trace_id
from orchestrator.store.records import AuditEvent, TicketRecord, TicketStatus
from orchestrator.store.repository import Store
from orchestrator.text import defang
from tools.models import Alert


class RecordActivities:
    def __init__(self, store: Store, backends: Backends) -> None:
        self.store = store
        self.backends = backends

    @activity.defn(name="tickets.open")
    async def open_ticket(self, request: OpenTicketInput) -> TicketRef:
        ticketing = self.backends.response_tools(request.incident_id).ticketing
        alerts = await self.store.alerts_for(request.incident_id)
        description = "\n".join(
            [f"Garrison incident {request.incident_id}: {len(alerts)} alert(s)."]
            + [
                f"- [{a.severity.value}] {defang(a.title)} on {defang(a.entities.host or '-')}"
                for a in alerts[:20]
            ]
            + trace_line()
        )
        ticket = await vendor_call(
            ticketing.open_ticket(request.incident_id, defang(request.title), description)
        )
        await self.store.tickets.save(
            TicketRecord(
                incident_id=request.incident_id,
                ticket_id=ticket.id,
                status=TicketStatus.OPEN,
                opened_at=datetime.now(UTC),
            )
        )
        await self._audit("ticket.opened", request.incident_id, ticket.id)
        return TicketRef(incident_id=request.incident_id, ticket_id=ticket.id)

    @activity.defn(name="tickets.comment")
    async def comment(self, note: TicketNote) -> None:
        """Post once: a retried attempt (the last one's answer may have been lost after the
        vendor applied it) looks for the comment's key on the ticket first."""
        ticketing = self.backends.response_tools(note.incident_id).ticketing
        recheck = note.recheck or activity.info().attempt > 1
        await vendor_call(
            ticketing.comment(note.ticket_id, note.text, key=note.key, recheck=recheck)
        )
        await self._audit("ticket.commented", note.incident_id, note.ticket_id)

    @activity.defn(name="tickets.close")
    async def close_ticket(self, request: CloseIncidentInput) -> None:
        """The ticket's closing note, from the ticket outbox: closing twice is a no-op."""
        await self._close_ticket(request)
        await self._audit("ticket.closed", request.incident_id, request.ticket_id)

    @activity.defn(name="tickets.status")
    async def ticketing_status(self, status: TicketingStatusInput) -> None:
        """Audit a change in the ticket's delivery (`ticketing.unavailable`, `.restored`, ...)."""
        await self.store.append_audit(
            AuditEvent(
                type=f"ticketing.{status.event.value}",
                actor="garrison-worker",
                incident_id=status.incident_id,
                target=status.ticket_id or status.incident_id,
                outcome=status.event.value,
                source=activity_source(),
                detail={
                    "since": status.since.isoformat() if status.since else None,
                    "at": status.at.isoformat(),
                    "pending": status.pending,
                    "detail": status.detail,
                },
            )
        )

    @activity.defn(name="incidents.close")
    async def close(self, request: CloseIncidentInput) -> None:
        summary = _close_summary(request)
        if not request.ticket_via_outbox:  # histories recorded before the ticket outbox
            await self._close_ticket(request)
        now = datetime.now(UTC)
        await self._audit("incident.closed", request.incident_id, request.verdict.value)
        # Last, so that the audit anchor written on close covers the close itself.
        await self.store.close_incident(request.incident_id, summary=summary, closed_at=now)
        if request.started_at is not None and request.first_executed is not None:
            observe_contained(request.started_at, request.first_executed)

    async def _close_ticket(self, request: CloseIncidentInput) -> None:
        ticketing = self.backends.response_tools(request.incident_id).ticketing
        # The summaries role's narrative, when one was written: labelled, after the facts.
        narrative = ticket_text(await self.store.model_use.narrative_of(request.incident_id))
        summary = _close_summary(request) + narrative
        await vendor_call(ticketing.close_ticket(request.ticket_id, summary))
        now = datetime.now(UTC)
        opened = await self.store.tickets.for_incident(request.incident_id)
        await self.store.tickets.save(
            TicketRecord(
                incident_id=request.incident_id,
                ticket_id=request.ticket_id,
                status=TicketStatus.CLOSED,
                opened_at=opened.opened_at if opened else now,
                closed_at=now,
            )
        )

    @activity.defn(name="incidents.alerts_joined")
    async def alerts_joined(self, request: AlertsJoinedInput) -> AlertsJoinedResult:
        """Compare alerts that joined after triage with what the incident had: a new host,
        account or address, or a severity above the triage's, calls for a re-triage. Each joined
        alert gets one `alert.joined` audit record (deduplicated: this activity may run again)."""
        stored = {a.uid: a for a in await self.store.alerts_for(request.incident_id)}
        seen = [stored[uid] for uid in request.seen_uids if uid in stored]
        known = _known_entities(seen)
        incident = await self.store.get_incident(request.incident_id)
        # A storm incident is one rule firing across many hosts: it was triaged as that storm,
        # and each further host is the storm going on, not news that calls for another triage
        # (LD1: a storm re-triaged per new host cost more triage calls than incidents).
        storm = incident is not None and ":storm:" in incident.group_key
        audited = {
            entry.target
            for entry in await self.store.audit_entries(incident_id=request.incident_id)
            if entry.type == "alert.joined"
        }
        joined: list[JoinedAlert] = []
        for uid in request.new_uids:
            alert = stored.get(uid)
            if alert is None:
                continue
            entities = _entities(alert)
            fresh = [e for e in entities if e.lower() not in known]
            known.update(e.lower() for e in fresh)
            if storm:
                fresh = []
            item = JoinedAlert(
                uid=uid,
                title=alert.title,
                severity=alert.severity,
                host=alert.entities.host,
                user=alert.entities.user,
                new_entities=fresh,
                raises_severity=alert.severity.rank > request.triage.severity.rank,
            )
            joined.append(item)
            if uid not in audited:
                await self._audit_joined(request.incident_id, item)
        missing = [uid for uid in request.new_uids if uid not in stored]
        return AlertsJoinedResult(joined=joined, missing=missing)

    async def _audit_joined(self, incident_id: str, item: JoinedAlert) -> None:
        await self.store.append_audit(
            AuditEvent(
                type="alert.joined",
                actor="garrison-worker",
                incident_id=incident_id,
                target=item.uid,
                outcome="retriage" if item.new_entities or item.raises_severity else "noted",
                source=activity_source(),
                detail={
                    "severity": item.severity.value,
                    "host": item.host or "",
                    "user": item.user or "",
                    "new_entities": ", ".join(item.new_entities),
                },
            )
        )

    @activity.defn(name="audit.policy_decision")
    async def policy_decision(self, record: PolicyRecord) -> None:
        await audit_policy_decision(self.store, record)

    async def _audit(self, kind: str, incident_id: str, outcome: str) -> None:
        await self.store.append_audit(
            AuditEvent(
                type=kind,
                actor="garrison-worker",
                incident_id=incident_id,
                target=incident_id,
                outcome=outcome,
                source=activity_source(),
            )
        )


def _close_summary(request: CloseIncidentInput) -> str:
    return (
        f"Verdict: {request.verdict.value} (confidence {request.confidence:.2f}).\n"
        f"{defang(request.summary)}"
    )


def _entities(alert: Alert) -> list[str]:
    """The hosts, accounts and addresses an alert names, as `kind:value`."""
    found = alert.entities
    pairs = (
        ("host", found.host),
        ("user", found.user),
        ("ip", found.src_ip),
        ("ip", found.dst_ip),
        ("domain", found.domain),
    )
    return list(dict.fromkeys(f"{kind}:{value}" for kind, value in pairs if value))


def _known_entities(seen: list[Alert]) -> set[str]:
    """What the incident already had: the entities of the alerts its triage saw."""
    return {entity.lower() for alert in seen for entity in _entities(alert)}


def trace_line() -> list[str]:
    """The incident's trace id, when tracing is on: where an analyst finds its spans."""
    trace = current_trace_id()
    return [f"Trace: {trace}"] if trace else []
