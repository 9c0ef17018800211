"""The ticketing capability. `key` is Garrison's incident key: opening twice finds the first.

A comment may carry an idempotency key (`comment_key`): its body then ends with a marker line
`[garrison:<key>]`, and with `recheck` (a delivery that may already have landed: a retry after a
dropped connection, a killed worker) the implementation looks for that marker among the ticket's
comments first and posts nothing when it is there. No ticketing API takes an idempotency key for
comments; the marker in the body is one that every vendor keeps.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from tools.results import Ticket


def marker(key: str) -> str:
    """The line that carries a comment's idempotency key in its body."""
    return f"[garrison:{key}]"


def with_marker(text: str, key: str | None) -> str:
    return text if key is None else f"{text}\n{marker(key)}"


def has_marker(comments: Iterable[str], key: str) -> bool:
    """Whether a comment carrying `key` is among `comments` (the closing bracket keeps key `x:1`
    from matching a comment keyed `x:10`)."""
    line = marker(key)
    return any(line in comment for comment in comments)


class TicketingClient(Protocol):
    async def find_ticket(self, key: str) -> Ticket | None: ...

    async def open_ticket(self, key: str, title: str, description: str) -> Ticket: ...

    async def comment(
        self, ticket_id: str, text: str, *, key: str | None = None, recheck: bool = False
    ) -> None: ...

    async def close_ticket(self, ticket_id: str, summary: str) -> Ticket: ...
