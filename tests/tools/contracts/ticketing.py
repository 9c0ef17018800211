"""The ticketing contract: every `TicketingClient` implementation passes these."""

from __future__ import annotations

import pytest

from tests.tools.contracts.world import Factory, Scenario
from tools.errors import NotFoundError, TransientToolError
from tools.journal import TwinFaults
from tools.results import TicketState
from tools.ticketing.base import TicketingClient, with_marker

TicketingFactory = Factory[TicketingClient]


async def opens_one_ticket_per_key(make: TicketingFactory) -> None:
    async with make(Scenario()) as h:
        assert await h.tool.find_ticket("inc-1") is None
        first = await h.tool.open_ticket("inc-1", "LSASS dump on PRD01", "1 alert")
        assert first.key == "inc-1" and first.state is TicketState.OPEN
        assert first.title == "LSASS dump on PRD01"
        again = await h.tool.open_ticket("inc-1", "LSASS dump on PRD01", "1 alert")
        assert again.id == first.id
        assert h.state_changes() == 1
        other = await h.tool.open_ticket("inc-2", "Another", "")
        assert other.id != first.id
        found = await h.tool.find_ticket("inc-1")
        assert found is not None and found.id == first.id


async def comments_then_closes_once(make: TicketingFactory) -> None:
    async with make(Scenario()) as h:
        ticket = await h.tool.open_ticket("inc-1", "LSASS dump on PRD01", "1 alert")
        await h.tool.comment(ticket.id, "isolate_host PRD01: executed")
        found = await h.tool.find_ticket("inc-1")
        assert found is not None and "isolate_host PRD01: executed" in found.comments

        closed = await h.tool.close_ticket(ticket.id, "Verdict: malicious")
        assert closed.id == ticket.id and closed.state is TicketState.CLOSED
        changes = h.state_changes()
        again = await h.tool.close_ticket(ticket.id, "Verdict: malicious")
        assert again == closed
        assert h.state_changes() == changes


async def unknown_tickets_are_not_found(make: TicketingFactory) -> None:
    async with make(Scenario()) as h:
        with pytest.raises(NotFoundError):
            await h.tool.comment("GAR-999", "hello")
        with pytest.raises(NotFoundError):
            await h.tool.close_ticket("GAR-999", "bye")
        assert h.state_changes() == 0


async def transient_faults_fail_the_first_calls_then_apply(make: TicketingFactory) -> None:
    async with make(Scenario(faults=TwinFaults(fail_first={"open_ticket": 2}))) as h:
        for _ in range(2):
            with pytest.raises(TransientToolError):
                await h.tool.open_ticket("inc-1", "title", "")
        assert await h.tool.find_ticket("inc-1") is None
        await h.tool.open_ticket("inc-1", "title", "")
        assert await h.tool.find_ticket("inc-1") is not None
        assert h.state_changes() == 1


async def keyed_comments_are_posted_once_when_rechecked(make: TicketingFactory) -> None:
    """A comment with an idempotency key carries it as a marker; a recheck (a retry that may
    follow a delivery that landed) finds it and posts nothing, and `inc-1:1` is not `inc-1:10`."""
    async with make(Scenario()) as h:
        ticket = await h.tool.open_ticket("inc-1", "title", "")
        await h.tool.comment(ticket.id, "Triage: malicious", key="inc-1:1")
        changes = h.state_changes()
        await h.tool.comment(ticket.id, "Triage: malicious", key="inc-1:1", recheck=True)
        assert h.state_changes() == changes
        await h.tool.comment(
            ticket.id, "isolate_host PRD01: executed", key="inc-1:10", recheck=True
        )
        assert h.state_changes() == changes + 1
        found = await h.tool.find_ticket("inc-1")
        assert found is not None
        assert found.comments == [
            "Triage: malicious\n[garrison:inc-1:1]",
            with_marker("isolate_host PRD01: executed", "inc-1:10"),
        ]


CONTRACTS = (
    opens_one_ticket_per_key,
    comments_then_closes_once,
    keyed_comments_are_posted_once_when_rechecked,
    unknown_tickets_are_not_found,
    transient_faults_fail_the_first_calls_then_apply,
)
