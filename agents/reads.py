"""Vendor reads retried within a budget, inside the agent that reads.

A transient error (5xx, 429, a timeout: `TransientToolError`) on a telemetry read is retried here,
with exponential backoff and never sooner than the vendor's Retry-After, because a read that fails
for good becomes an evidence gap and an agent reasoning on gaps reaches other conclusions (a lost
process record turns the victim's browser into the attacker's, a lost connection list loses the
C2 address). Only when the budget is spent is the error raised, for the caller to record the gap.
Permanent errors (auth, not found, other 4xx) are raised at once: a retry cannot fix them.

The budget (`ReadRetry`, defaults below): at most `attempts` tries of one read, waits doubling
from `first_wait_s` up to `max_wait_s` (a Retry-After up to `max_retry_after_s` instead, when the
vendor sent one), and no retry starts once `deadline_s` has passed since the budget was opened.
One budget is opened per graph run (and one for the facts of a playbook step), so a dead EDR costs
an activity at most `deadline_s` of retrying, then one quick failure per remaining read. These
errors never leave the activity, so Temporal's retries of it do not multiply this budget: Temporal
retries an agent activity only when its worker dies or its store fails.

Reads are paged (`read_window`): a vendor query returns at most `PAGE` events, oldest first, and
says when it stopped at that limit (`tools.results.EventList`). The next page starts at the last
event's time (events of that instant read twice are kept once), until the window is read or
`MAX_PAGES` pages were read: `PAGE * MAX_PAGES` events of one kind per host and window (4,000),
which bounds what one long incident costs the vendor's API quota. A read the budget still cuts
says where (`WindowRead.cut_at`), and the agent records it as an evidence gap ("process events on
H cut at 4000 events: ..."), never as a complete read: the attacker's half of a long incident
may lie past the cut.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, TypeVar

from temporalio import activity

from tools.edr.base import AccountEventReader, EdrReader
from tools.errors import TransientToolError
from tools.results import (
    AccountEvent,
    FileEvent,
    HostInfo,
    LogonEvent,
    NetworkConnection,
    ProcessEvent,
    RegistryEvent,
    SystemEvent,
    was_truncated,
)

_T = TypeVar("_T")
# Every kind of telemetry event a read returns (what `read_window` pages through).
Event = TypeVar(
    "Event",
    ProcessEvent,
    NetworkConnection,
    LogonEvent,
    RegistryEvent,
    FileEvent,
    AccountEvent,
    SystemEvent,
)
HEARTBEAT_SLICE_S = 1.0  # a long Retry-After is slept in slices, heartbeating between them
PAGE = 500  # events per vendor query
MAX_PAGES = 8  # queries per kind of event, host and window


@dataclass(frozen=True)
class ReadRetry:
    """How hard an agent tries one vendor read before recording it as an evidence gap."""

    attempts: int = 8
    first_wait_s: float = 0.25
    max_wait_s: float = 4.0
    max_retry_after_s: float = 30.0
    deadline_s: float = 120.0

    def wait_before(self, retry: int, error: TransientToolError) -> float:
        """Seconds to wait before retry number `retry` (1 for the first retry)."""
        backoff = min(self.max_wait_s, self.first_wait_s * 2 ** (retry - 1))
        if error.retry_after_s is None:
            return backoff
        return max(backoff, min(self.max_retry_after_s, error.retry_after_s))


class ReadBudget:
    """One run's retry budget: the policy, and the clock it started on."""

    def __init__(self, policy: ReadRetry | None = None) -> None:
        self.policy = policy or ReadRetry()
        self.started = time.monotonic()
        self.retries = 0  # retries made within this budget, for the record

    async def read(self, call: Callable[[], Awaitable[_T]]) -> _T:
        """`call()`, retried on transient errors while the budget lasts; the last error after."""
        attempt = 1
        while True:
            try:
                return await call()
            except TransientToolError as error:
                wait = self.policy.wait_before(attempt, error)
                over = time.monotonic() + wait - self.started > self.policy.deadline_s
                if attempt >= self.policy.attempts or over:
                    raise
                self.retries += 1
                attempt += 1
                await _sleep_beating(wait)


async def _sleep_beating(seconds: float) -> None:
    """Sleep, heartbeating the running activity (if any) between slices: a Retry-After of 30 s
    must not look like a dead worker to Temporal."""
    end = time.monotonic() + seconds
    while (left := end - time.monotonic()) > 0:
        if activity.in_activity():
            activity.heartbeat()
        await asyncio.sleep(min(left, HEARTBEAT_SLICE_S))


class RetryingEdr:
    """An `EdrReader` whose every read goes through one `ReadBudget`."""

    def __init__(self, edr: EdrReader, budget: ReadBudget) -> None:
        self.edr = edr
        self.budget = budget

    async def find_host(self, host: str) -> HostInfo | None:
        return await self.budget.read(lambda: self.edr.find_host(host))

    async def process_events(
        self,
        host: str,
        start: datetime | None = None,
        end: datetime | None = None,
        limit: int = 500,
    ) -> list[ProcessEvent]:
        return await self.budget.read(lambda: self.edr.process_events(host, start, end, limit))

    async def network_connections(
        self,
        host: str,
        start: datetime | None = None,
        end: datetime | None = None,
        limit: int = 500,
    ) -> list[NetworkConnection]:
        return await self.budget.read(lambda: self.edr.network_connections(host, start, end, limit))

    async def logons(
        self,
        host: str,
        start: datetime | None = None,
        end: datetime | None = None,
        limit: int = 500,
    ) -> list[LogonEvent]:
        return await self.budget.read(lambda: self.edr.logons(host, start, end, limit))

    async def registry_events(
        self,
        host: str,
        start: datetime | None = None,
        end: datetime | None = None,
        limit: int = 500,
    ) -> list[RegistryEvent]:
        return await self.budget.read(lambda: self.edr.registry_events(host, start, end, limit))

    async def file_events(
        self,
        host: str,
        start: datetime | None = None,
        end: datetime | None = None,
        limit: int = 500,
    ) -> list[FileEvent]:
        return await self.budget.read(lambda: self.edr.file_events(host, start, end, limit))

    async def account_events(
        self,
        host: str,
        start: datetime | None = None,
        end: datetime | None = None,
        limit: int = 500,
    ) -> list[AccountEvent]:
        """The optional read (`AccountEventReader`): none from a reader that does not offer it."""
        reader = self.edr
        if not isinstance(reader, AccountEventReader):
            return []
        return await self.budget.read(lambda: reader.account_events(host, start, end, limit))

    async def system_events(
        self,
        host: str,
        start: datetime | None = None,
        end: datetime | None = None,
        limit: int = 500,
    ) -> list[SystemEvent]:
        return await self.budget.read(lambda: self.edr.system_events(host, start, end, limit))


def retrying_edr(edr: EdrReader, policy: ReadRetry | None = None) -> RetryingEdr:
    """`edr` with a fresh budget (an already retrying reader keeps its own)."""
    if isinstance(edr, RetryingEdr):
        return edr
    return RetryingEdr(edr, ReadBudget(policy))


@dataclass
class WindowRead(Generic[Event]):
    """The events of a window, oldest first; `cut_at` is the time the read stopped at when the
    page budget ran out before the window did (None: the whole window was read)."""

    events: list[Event]
    cut_at: datetime | None = None
    pages: int = 0


Fetch = Callable[[datetime | None, datetime | None, int], Awaitable[list[Event]]]


async def read_window(
    fetch: Fetch[Event],
    start: datetime | None,
    end: datetime | None,
    *,
    page: int = PAGE,
    max_pages: int = MAX_PAGES,
) -> WindowRead[Event]:
    """All the events `fetch(start, end, limit)` holds in the window, page by page (module
    docstring). A page that cannot move past its first instant (more than `page` events in one
    timestamp) ends the read as cut there."""
    read: WindowRead[Event] = WindowRead(events=[])
    seen: set[Event] = set()
    cursor = start
    while read.pages < max_pages:
        batch = await fetch(cursor, end, page)
        read.pages += 1
        for event in batch:
            if event not in seen:
                seen.add(event)
                read.events.append(event)
        if not was_truncated(batch, page) or not batch:
            return read
        last = max(e.time for e in batch)
        if cursor is not None and last <= cursor:
            read.cut_at = cursor
            return read
        cursor = last
    read.cut_at = cursor
    return read
