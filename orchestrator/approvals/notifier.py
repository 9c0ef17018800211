"""How approval requests reach humans. Slack implements this in its own module; the default
writes to the log so that a console or CLI user finds requests with `garrison approvals list`."""

from __future__ import annotations

import logging
from typing import Protocol

from orchestrator.models import (
    ApprovalFinalInput,
    ApprovalNoticeInput,
    ApprovalRequestInput,
    TicketingEvent,
    TicketingStatusInput,
)

log = logging.getLogger("garrison.approvals")


class ApprovalNotifier(Protocol):
    async def requested(self, request: ApprovalRequestInput) -> None: ...

    async def notice(self, notice: ApprovalNoticeInput) -> None: ...

    async def finalized(self, final: ApprovalFinalInput) -> None: ...

    async def ticketing(self, status: TicketingStatusInput) -> None: ...


class LogNotifier:
    async def requested(self, request: ApprovalRequestInput) -> None:
        log.info(
            "approval %s requested: %s %s (risk %d) in %s, deadline %s",
            request.approval_id,
            request.action.kind.value,
            request.action.target,
            request.decision.risk,
            request.incident_id,
            request.deadline.isoformat(),
        )

    async def notice(self, notice: ApprovalNoticeInput) -> None:
        log.info("approval %s: %s", notice.approval_id, notice.notice.value)

    async def finalized(self, final: ApprovalFinalInput) -> None:
        log.info("approval %s: %s", final.approval_id, final.status)

    async def ticketing(self, status: TicketingStatusInput) -> None:
        level = logging.INFO if status.event is TicketingEvent.RESTORED else logging.WARNING
        log.log(level, "%s", ticketing_text(status))


def ticketing_text(status: TicketingStatusInput) -> str:
    """What humans are told when an incident's ticket cannot keep up (the ticket outbox)."""
    incident, since = status.incident_id, status.since
    when = f" since {since:%Y-%m-%d %H:%M:%S} UTC" if since else ""
    ticket = status.ticket_id or "not yet opened"
    match status.event:
        case TicketingEvent.UNAVAILABLE:
            return (
                f"Ticketing is unavailable for incident {incident}{when} (ticket {ticket}):"
                f" {status.pending} update(s) wait and are delivered once it is back."
                " Containment is not held up."
            )
        case TicketingEvent.RESTORED:
            return (
                f"Ticketing is back for incident {incident} (unavailable{when}): ticket {ticket}."
            )
        case TicketingEvent.DROPPED:
            return (
                f"The ticketing vendor refused an update of incident {incident}'s ticket"
                f" ({ticket}) for good; later refusals are counted, not repeated."
            )
        case TicketingEvent.INCOMPLETE:
            return (
                f"Incident {incident} is closed, but its ticket ({ticket}) is incomplete:"
                f" {status.pending} update(s) undelivered (ticketing unavailable{when})."
                f" `garrison incidents show {incident}` has the whole timeline."
            )
