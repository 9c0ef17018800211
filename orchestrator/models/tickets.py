"""The incident's ticket: opening it, its notes, the ticket outbox's queued work and its state
carried across continue-as-new, and the changes in its delivery told to humans."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import Field

from orchestrator.models.activities import CloseIncidentInput
from orchestrator.models.base import FrozenModel
from orchestrator.models.views import TicketingView


class OpenTicketInput(FrozenModel):
    incident_id: str
    title: str


class TicketRef(FrozenModel):
    incident_id: str
    ticket_id: str


class TicketNote(FrozenModel):
    incident_id: str
    ticket_id: str
    text: str
    # The comment's idempotency key (`<incident>:<n>`), carried in its body as a marker; with
    # `recheck` (a delivery that may have landed already) the ticket is searched for it first.
    key: str | None = None
    recheck: bool = False


class TicketWorkKind(StrEnum):
    OPEN = "open"
    COMMENT = "comment"
    CLOSE = "close"


class TicketWork(FrozenModel):
    """One update of the incident's ticket, queued in the ticket outbox and delivered in order.
    A comment's `seq` numbers it within the incident (its idempotency key); `close` is the
    closing note. The ticket id is filled in at delivery: it is unknown until the open lands."""

    kind: TicketWorkKind
    seq: int = 0
    text: str = ""
    close: CloseIncidentInput | None = None
    recheck: bool = False  # an earlier delivery of it may have landed (a continued run)


class TicketOutboxCarry(FrozenModel):
    """The ticket outbox's state, carried across continue-as-new."""

    ticket: TicketRef | None = None
    queue: list[TicketWork] = Field(default_factory=list)
    next_seq: int = 1
    events: int = 0  # ticketing events reported so far (`TicketingStatusInput.seq`)
    view: TicketingView = Field(default_factory=TicketingView)


class TicketingEvent(StrEnum):
    UNAVAILABLE = "unavailable"  # the vendor failed an update's first attempts
    RESTORED = "restored"  # the update that failed was delivered
    DROPPED = "dropped"  # the vendor refused an update for good
    INCOMPLETE = "incomplete"  # the incident finished with ticket updates undelivered


class TicketingStatusInput(FrozenModel):
    """A change in the ticket's delivery: audited (`tickets.status`) and told to humans through
    their own channel (`HumanNotice.ticketing`), which does not depend on the ticketing vendor."""

    incident_id: str
    event: TicketingEvent
    seq: int = Field(ge=1, description="the n-th such event of the incident: a message key")
    at: datetime
    since: datetime | None = None  # when the vendor started failing
    ticket_id: str | None = None
    pending: int = 0
    detail: str = Field(default="", max_length=1_000)
