"""One bounded poll of a vendor's alert API, the same for every vendor.

The poll reads the window from the stored cursor up to `now - settle_s`, page by page in update
order, for at most `max_pages` pages and `max_requests` requests. Each record new to the cursor
is normalised; those that cannot be are handed to the dead-letter callback with the reason. The
rest go to the sink, and only after the sink committed them (and the dead letters were handed
over) is the cursor advanced and stored. Delivery is at least once: a crash between the sink and
the cursor re-delivers, and the sink deduplicates by fingerprint.

A transient vendor error (429 with Retry-After, 5xx, a timeout) after some pages commits what was
read, then is raised, so Temporal retries after the vendor's delay and the retry continues from
there. A record updated while the poll runs (after the window's end) is delivered but does not
move the cursor; a page out of update order is refused, since the cursor could then skip alerts.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from orchestrator.ingest.normalised import Normalised, NormaliseError, Shape
from orchestrator.ingest.pollers.cursor import Cursor, instant, iso_ms
from orchestrator.ingest.pollers.models import PollInput, PollResult, PollSource
from orchestrator.ingest.sink import AlertSink
from tools.errors import PermanentToolError, TransientToolError

log = logging.getLogger(__name__)

# What the composition root injects: (source, the record as received, why it was refused).
DeadLetter = Callable[[str, Mapping[str, Any], str], Awaitable[None]]
Normaliser = Callable[[Mapping[str, Any], Shape], Normalised]


@dataclass(frozen=True)
class FeedRecord:
    """One alert as the vendor sent it, with its id and update instant when it has them."""

    body: Mapping[str, Any]
    id: str | None
    at: str | None


@dataclass
class RequestBudget:
    """Requests one poll may still make."""

    left: int
    used: int = 0
    short: bool = False  # a request was refused: the window was not read to its end

    def take(self, n: int = 1) -> bool:
        if n > self.left:
            self.short = True
            return False
        self.left -= n
        self.used += n
        return True


@dataclass(frozen=True)
class Window:
    since: Cursor
    until: str  # inclusive upper bound, milliseconds, UTC


class AlertFeed(Protocol):
    """A vendor's alert API, walked in update order. `pages` yields pages of the window (records
    the cursor covers may be among them) until the window is read or the budget is short."""

    source: PollSource
    shape: Shape

    def pages(
        self, window: Window, page_size: int, budget: RequestBudget
    ) -> AsyncIterator[list[FeedRecord]]: ...

    async def aclose(self) -> None: ...


class CursorStore(Protocol):
    async def load(self, source: str) -> Cursor | None: ...

    async def save(self, source: str, cursor: Cursor) -> None: ...


class OutOfOrder(PermanentToolError):
    """The vendor answered a page out of update order: the cursor cannot be trusted with it."""


@dataclass
class _Read:
    cursor: Cursor
    until: str
    fresh: list[FeedRecord] = field(default_factory=list)
    unplaced: list[tuple[FeedRecord, str]] = field(default_factory=list)
    seen: set[str] = field(default_factory=set)
    pages: int = 0
    exhausted: bool = False

    def take(self, record: FeedRecord, start: Cursor) -> None:
        if record.id is None or record.at is None:
            self.unplaced.append((record, "no id or update time: cannot be placed in the feed"))
            return
        try:
            at = instant(record.at)
        except ValueError:
            self.unplaced.append((record, f"unreadable update time {record.at[:40]!r}"))
            return
        if start.covers(record.at, record.id) or record.id in self.seen:
            return
        self.seen.add(record.id)
        self.fresh.append(record)
        if at > instant(self.until):
            return  # updated while this poll ran: delivered, read again by a later poll
        if self.cursor.at is not None and at < instant(self.cursor.at):
            raise OutOfOrder(f"alert {record.id[:80]} is older than one read before it")
        self.cursor = self.cursor.advance(record.at, record.id)


async def poll_once(
    feed: AlertFeed,
    request: PollInput,
    *,
    cursors: CursorStore,
    sink: AlertSink,
    dead_letter: DeadLetter,
    normalise: Normaliser,
    now: datetime,
) -> PollResult:
    source = feed.source.value
    start = await cursors.load(source)
    if start is None:
        lookback = request.initial_lookback_s
        start = Cursor(at=iso_ms(now - timedelta(seconds=lookback)) if lookback else None)
    read = _Read(cursor=start, until=iso_ms(now - timedelta(seconds=request.settle_s)))
    budget = RequestBudget(request.max_requests)
    failure: TransientToolError | None = None
    useful = 0
    try:
        async for page in feed.pages(Window(start, read.until), request.page_size, budget):
            read.pages += 1
            before = len(read.fresh) + len(read.unplaced)
            for record in page:
                read.take(record, start)
            # A page of alerts already read (a run sharing the cursor's instant) does not count
            # against max_pages, or such a run longer than a poll could never be passed; the
            # request budget still bounds the poll.
            if len(read.fresh) + len(read.unplaced) > before:
                useful += 1
            if useful >= request.max_pages:
                read.exhausted = True
                break
        read.exhausted = read.exhausted or budget.short
    except TransientToolError as error:
        failure = error  # commit what was read, then let Temporal retry after the delay
    result = await _commit(feed, read, sink, dead_letter, normalise)
    await cursors.save(source, read.cursor)
    if failure is not None:
        raise failure
    log.info("poll %s: %s", source, result)
    return result.model_copy(update={"requests": budget.used})


async def _commit(
    feed: AlertFeed,
    read: _Read,
    sink: AlertSink,
    dead_letter: DeadLetter,
    normalise: Normaliser,
) -> PollResult:
    good: list[Normalised] = []
    refused = list(read.unplaced)
    for record in read.fresh:
        try:
            good.append(normalise(record.body, feed.shape))
        except NormaliseError as error:
            refused.append((record, str(error)))
    accepted = await sink.accept(good) if good else None
    for record, reason in refused:
        await dead_letter(feed.source.value, record.body, reason)
    return PollResult(
        source=feed.source,
        pages=read.pages,
        fetched=len(read.fresh),
        accepted=len(accepted.alert_ids) if accepted else 0,
        duplicates=accepted.duplicates if accepted else 0,
        dead_lettered=len(refused),
        cursor=read.cursor.at,
        exhausted=read.exhausted,
    )
