"""The ticketing capability. `key` is Garrison's incident key: opening twice finds the first."""

from __future__ import annotations

from typing import Protocol

from tools.results import Ticket


class TicketingClient(Protocol):
    async def find_ticket(self, key: str) -> Ticket | None: ...

    async def open_ticket(self, key: str, title: str, description: str) -> Ticket: ...

    async def comment(self, ticket_id: str, text: str) -> None: ...

    async def close_ticket(self, ticket_id: str, summary: str) -> Ticket: ...
