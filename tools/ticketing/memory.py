"""The in-memory ticketing twin: tickets folded from a `StateJournal` of opens, comments and
closes. Ids (`GAR-1`, `GAR-2`...) follow the order of first opens in the journal, so processes
sharing one journal agree on them, and a second open of a key finds the first ticket.

A journal only grows, so each call folds only the changes appended since the last one: a twin
shared by thousands of incidents (`bench.memory`) costs the same per call as a fresh one.
"""

from __future__ import annotations

from tools.errors import NotFoundError
from tools.journal import StateChange, StateJournal, TwinFaults, TwinRuntime
from tools.results import Ticket, TicketState
from tools.ticketing.base import has_marker, with_marker

_OPS = ("open_ticket", "comment", "close_ticket")


class InMemoryTicketing:
    """Implements `TicketingClient`."""

    def __init__(
        self,
        journal: StateJournal | None = None,
        faults: TwinFaults | None = None,
        *,
        project: str = "GAR",
    ) -> None:
        self._runtime = TwinRuntime(journal, faults)
        self._project = project
        self._folded = 0  # how many of the journal's changes are folded into the tickets below
        self._by_id: dict[str, Ticket] = {}
        self._by_key: dict[str, str] = {}  # ticket key -> id

    async def find_ticket(self, key: str) -> Ticket | None:
        self._runtime.call("find_ticket")
        return self._with_key(key)

    async def open_ticket(self, key: str, title: str, description: str) -> Ticket:
        self._runtime.call("open_ticket")
        existing = self._with_key(key)
        if existing is not None:
            return existing
        await self._runtime.record("open_ticket", key, title)
        opened = self._with_key(key)
        assert opened is not None
        return opened

    async def comment(
        self, ticket_id: str, text: str, *, key: str | None = None, recheck: bool = False
    ) -> None:
        self._runtime.call("comment")
        ticket = self._get(ticket_id)
        if key is not None and recheck and has_marker(ticket.comments, key):
            return
        await self._runtime.record("comment", ticket_id, with_marker(text, key))

    async def close_ticket(self, ticket_id: str, summary: str) -> Ticket:
        self._runtime.call("close_ticket")
        ticket = self._get(ticket_id)
        if ticket.state is TicketState.CLOSED:
            return ticket
        await self._runtime.record("close_ticket", ticket_id, summary)
        return self._get(ticket_id)

    def _get(self, ticket_id: str) -> Ticket:
        found = self._tickets().get(ticket_id)
        if found is None:
            raise NotFoundError(f"no ticket {ticket_id!r}")
        return found

    def _with_key(self, key: str) -> Ticket | None:
        tickets = self._tickets()
        ticket_id = self._by_key.get(key)
        return None if ticket_id is None else tickets[ticket_id]

    def _tickets(self) -> dict[str, Ticket]:
        """The tickets by id, with the journal's new changes folded in."""
        changes = self._runtime.journal.changes()
        for change in changes[self._folded :]:
            if change.op in _OPS:
                self._fold(change)
        self._folded = len(changes)
        return self._by_id

    def _fold(self, change: StateChange) -> None:
        """The first open of a key makes the ticket, later opens are the same ticket opened
        concurrently by another process; the closing summary ends the comments."""
        ticket = self._by_id.get(change.target)
        match change.op:
            case "open_ticket" if change.target not in self._by_key:
                ticket_id = f"{self._project}-{len(self._by_key) + 1}"
                self._by_key[change.target] = ticket_id
                self._by_id[ticket_id] = Ticket(
                    id=ticket_id, key=change.target, title=change.detail
                )
            case "comment" if ticket is not None:
                comments = [*ticket.comments, change.detail]
                self._by_id[change.target] = ticket.model_copy(update={"comments": comments})
            case "close_ticket" if ticket is not None and ticket.state is TicketState.OPEN:
                self._by_id[change.target] = ticket.model_copy(
                    update={
                        "state": TicketState.CLOSED,
                        "comments": [*ticket.comments, change.detail],
                    }
                )
            case _:
                pass
