"""The in-memory ticketing twin: tickets folded from a `StateJournal` of opens, comments and
closes. Ids (`GAR-1`, `GAR-2`...) follow the order of first opens in the journal, so processes
sharing one journal agree on them, and a second open of a key finds the first ticket.
"""

from __future__ import annotations

from tools.errors import NotFoundError
from tools.journal import StateJournal, TwinFaults, TwinRuntime
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

    async def find_ticket(self, key: str) -> Ticket | None:
        self._runtime.call("find_ticket")
        return next((t for t in self._tickets() if t.key == key), None)

    async def open_ticket(self, key: str, title: str, description: str) -> Ticket:
        self._runtime.call("open_ticket")
        existing = next((t for t in self._tickets() if t.key == key), None)
        if existing is not None:
            return existing
        await self._runtime.record("open_ticket", key, title)
        return next(t for t in self._tickets() if t.key == key)

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
        found = next((t for t in self._tickets() if t.id == ticket_id), None)
        if found is None:
            raise NotFoundError(f"no ticket {ticket_id!r}")
        return found

    def _tickets(self) -> list[Ticket]:
        """Fold the journal: the first open of a key makes the ticket, later opens are the same
        ticket opened concurrently by another process; the closing summary ends the comments."""
        by_id: dict[str, Ticket] = {}
        keys: set[str] = set()
        for change in self._runtime.changes(*_OPS):
            match change.op:
                case "open_ticket" if change.target not in keys:
                    keys.add(change.target)
                    ticket_id = f"{self._project}-{len(keys)}"
                    by_id[ticket_id] = Ticket(id=ticket_id, key=change.target, title=change.detail)
                case "comment" if change.target in by_id:
                    ticket = by_id[change.target]
                    comments = [*ticket.comments, change.detail]
                    by_id[change.target] = ticket.model_copy(update={"comments": comments})
                case "close_ticket" if change.target in by_id:
                    ticket = by_id[change.target]
                    if ticket.state is TicketState.OPEN:
                        by_id[change.target] = ticket.model_copy(
                            update={
                                "state": TicketState.CLOSED,
                                "comments": [*ticket.comments, change.detail],
                            }
                        )
                case _:
                    continue
        return list(by_id.values())
