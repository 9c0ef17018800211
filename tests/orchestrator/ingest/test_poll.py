"""One bounded poll over real loopback HTTP to each vendor's emulator: paging, `max_pages`, the
stored cursor (several alerts sharing one instant cut at page and poll boundaries), 429 with
Retry-After, the request budget, and dead letters for what cannot be normalised."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from orchestrator.activities.ingest import normalise_shape
from orchestrator.ingest.pollers.base import poll_once
from orchestrator.ingest.pollers.models import PollInput, PollResult, PollSource
from orchestrator.store import poll_cursors
from orchestrator.store.repository import Store
from tests.orchestrator.ingest.poll_kit import (
    T0,
    DeadLetters,
    RecordingSink,
    Vendor,
    make_alert,
    open_store,
    request,
    vendor,
)
from tools.errors import TransientToolError

SOURCES = [PollSource.FALCON, PollSource.GRAPH]


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    store = await open_store(tmp_path)
    yield store
    await store.close()


async def _poll(
    v: Vendor, store: Store, sink: RecordingSink, dead: DeadLetters, req: PollInput
) -> PollResult:
    return await poll_once(
        v.feed,
        req,
        cursors=poll_cursors.StoreCursors(store),
        sink=sink,
        dead_letter=dead,
        normalise=normalise_shape,
        now=datetime.now(UTC),
    )


@pytest.mark.parametrize("source", SOURCES)
async def test_poll_pages_stops_at_max_pages_and_resumes_from_the_cursor(
    source: PollSource, store: Store
) -> None:
    sink, dead = RecordingSink(), DeadLetters()
    async with vendor(source) as v:
        ids = [v.add(make_alert(n), T0 + timedelta(seconds=n)) for n in range(9)]
        results = []
        while not results or results[-1].exhausted:
            assert len(results) < 6
            results.append(
                await _poll(v, store, sink, dead, request(source, page_size=2, max_pages=2))
            )
        assert len(results) > 2, "nine alerts, at most four a poll"
        assert all(r.pages >= 2 and 0 < r.fetched <= 4 for r in results[:-1])
        # Graph queries each page afresh from the instant reached, re-reading the alert there.
        assert results[0].fetched == (4 if source is PollSource.FALCON else 3)
        assert sink.uids == ids  # in update order, each once
        idle = await _poll(v, store, sink, dead, request(source, page_size=2, max_pages=2))
        assert idle.fetched == 0 and sink.uids == ids
        # A new alert, and an old one updated since, are read next; nothing else again.
        late = v.add(make_alert(50), T0 + timedelta(minutes=5))
        await _poll(v, store, sink, dead, request(source, page_size=2))
        assert sink.uids == [*ids, late]
        assert dead.letters == []


@pytest.mark.parametrize("source", SOURCES)
async def test_alerts_sharing_one_instant_across_page_and_poll_boundaries_arrive_once(
    source: PollSource, store: Store
) -> None:
    sink, dead = RecordingSink(), DeadLetters()
    async with vendor(source) as v:
        same = T0 + timedelta(seconds=10)
        ids = [v.add(make_alert(0), T0)]
        ids += [v.add(make_alert(n), same) for n in range(1, 6)]  # five at one instant
        ids += [v.add(make_alert(9), T0 + timedelta(seconds=20))]
        polls = 0
        while polls < 10:
            polls += 1
            result = await _poll(v, store, sink, dead, request(source, page_size=2, max_pages=1))
            if result.fetched == 0:
                break
        assert sorted(sink.uids) == sorted(ids)
        assert len(sink.uids) == len(set(sink.uids)), "an alert was delivered twice"
        assert polls < 10
        cursor = await poll_cursors.load_cursor(store, source.value)
        assert cursor is not None and cursor.ids == (ids[-1],)


@pytest.mark.parametrize("source", SOURCES)
async def test_429_commits_what_was_read_and_raises_with_retry_after(
    source: PollSource, store: Store
) -> None:
    sink, dead = RecordingSink(), DeadLetters()
    async with vendor(source) as v:
        ids = [v.add(make_alert(n), T0 + timedelta(seconds=n)) for n in range(4)]
        await _poll(v, store, sink, dead, request(source, page_size=2, max_pages=1))
        assert sink.uids == ids[:2]
        v.state.faults.rate_limit_429, v.state.faults.retry_after_s = 1, 7
        with pytest.raises(TransientToolError) as caught:
            await _poll(v, store, sink, dead, request(source, page_size=2))
        assert caught.value.retry_after_s == 7.0
        assert sink.uids == ids[:2]
        await _poll(v, store, sink, dead, request(source, page_size=2))
        assert sink.uids == ids


@pytest.mark.parametrize("source", SOURCES)
async def test_request_budget_bounds_a_poll(source: PollSource, store: Store) -> None:
    sink, dead = RecordingSink(), DeadLetters()
    async with vendor(source) as v:
        ids = [v.add(make_alert(n), T0 + timedelta(seconds=n)) for n in range(6)]
        result = await _poll(v, store, sink, dead, request(source, page_size=2, max_requests=2))
        pages = 1 if source is PollSource.FALCON else 2  # Falcon: ids, then entities
        assert (result.pages, result.requests, result.exhausted) == (pages, 2, True)
        assert sink.uids == ids[: result.fetched] and result.fetched >= 2


def _malformed(v: Vendor, at: datetime) -> dict[str, Any]:
    if v.source is PollSource.FALCON:
        return {
            "composite_id": f"{'0' * 32}:ind:broken:1",
            "cid": "0" * 32,
            "updated_timestamp": at.strftime("%Y-%m-%dT%H:%M:%S.%f") + "000Z",
            "severity": "very",
        }
    return {
        "@odata.type": "#microsoft.graph.security.alert",
        "id": "da000000000000000000_-1",
        "lastUpdateDateTime": at.strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z",
        "severity": "very",
    }


@pytest.mark.parametrize("source", SOURCES)
async def test_a_malformed_alert_is_dead_lettered_and_the_rest_accepted(
    source: PollSource, store: Store
) -> None:
    sink, dead = RecordingSink(), DeadLetters()
    async with vendor(source) as v:
        good = v.add(make_alert(1), T0)
        broken = _malformed(v, T0 + timedelta(seconds=1))
        v.add_raw(broken)
        later = v.add(make_alert(2), T0 + timedelta(seconds=2))
        result = await _poll(v, store, sink, dead, request(source))
        assert sink.uids == [good, later]
        assert [(s, o) for s, o, _ in dead.letters] == [(source.value, broken)]
        assert dead.letters[0][2]  # a reason
        assert result.dead_lettered == 1
        again = await _poll(v, store, sink, dead, request(source))
        assert again.fetched == 0 and len(dead.letters) == 1  # past it, not lost, not repeated
