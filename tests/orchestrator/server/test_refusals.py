"""The refusal audit on a real SQLite store: each refusal audited once, a flood collapsed into one
counted row per (kind, address) and window, written when the window closes, on the next refusal
after it, or at shutdown; and the number of tracked windows bounded."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from orchestrator.server.refusals import COLLAPSED, Refusal, RefusalAudit, clip
from orchestrator.store.records import AuditRecord
from orchestrator.store.repository import Store


class Clock:
    """A clock the test moves (the window's timer still runs on the event loop)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def refusal(source: str = "192.0.2.1", status: int = 401, path: str = "/api/incidents") -> Refusal:
    return Refusal(
        type="http.request_refused",
        kind=str(status),
        status=status,
        source=source,
        channel="api",
        actor="unknown",
        method="GET",
        path=path,
        reason="a bearer token is required",
    )


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = await Store.open(f"sqlite:///{tmp_path / 'g.db'}")
    yield opened
    await opened.close()


def accounted(rows: list[AuditRecord]) -> int:
    """Refusals the log accounts for: own rows plus the counts of the collapsed rows."""
    own = sum(1 for r in rows if r.type == "http.request_refused")
    return own + sum(int(r.detail["count"] or 0) for r in rows if r.type == COLLAPSED)


async def test_a_flood_is_one_row_and_one_count_written_when_the_next_refusal_comes(
    store: Store,
) -> None:
    clock = Clock()
    audit = RefusalAudit(store, window_s=60, clock=clock)
    for _ in range(500):
        await audit.record(refusal())
    rows = await store.audit_entries()
    assert [r.type for r in rows] == ["http.request_refused"]  # the rest only counted so far
    assert rows[0].detail["client"] == "192.0.2.1" and rows[0].outcome.startswith("401: ")

    clock.now += 61  # the window closed; the next refusal writes its count, then its own row
    await audit.record(refusal())
    rows = await store.audit_entries()
    assert [r.type for r in rows] == ["http.request_refused", COLLAPSED, "http.request_refused"]
    summary = rows[1]
    assert summary.detail["count"] == 499
    assert summary.detail["kind"] == "http.request_refused:401"
    assert summary.detail["client"] == "192.0.2.1"
    await audit.aclose()
    assert accounted(await store.audit_entries()) == 501


async def test_kinds_and_addresses_have_windows_of_their_own(store: Store) -> None:
    audit = RefusalAudit(store, clock=Clock())
    for source in ("192.0.2.1", "192.0.2.2"):
        for status in (401, 404, 422):
            for _ in range(3):
                await audit.record(refusal(source, status))
    await audit.aclose()
    rows = await store.audit_entries()
    assert sum(1 for r in rows if r.type == "http.request_refused") == 6
    assert sorted(r.detail["count"] for r in rows if r.type == COLLAPSED) == [2] * 6
    assert accounted(rows) == 18


async def test_the_timer_writes_the_count_when_the_window_closes(store: Store) -> None:
    audit = RefusalAudit(store, window_s=0.2)
    for _ in range(10):
        await audit.record(refusal())
    await asyncio.sleep(0.6)  # no refusal after the window: the timer writes the count
    rows = await store.audit_entries()
    assert [r.type for r in rows] == ["http.request_refused", COLLAPSED]
    assert rows[1].detail["count"] == 9
    assert audit.tracked == 0
    await audit.aclose()
    assert len(await store.audit_entries()) == 2  # nothing left to write at shutdown


async def test_shutdown_writes_the_counts_of_open_windows(store: Store) -> None:
    audit = RefusalAudit(store, clock=Clock())
    for _ in range(4):
        await audit.record(refusal())
    await audit.aclose()
    rows = await store.audit_entries()
    assert [(r.type, r.detail.get("count")) for r in rows] == [
        ("http.request_refused", None),
        (COLLAPSED, 3),
    ]


async def test_tracked_windows_are_bounded_and_the_rest_share_one(store: Store) -> None:
    audit = RefusalAudit(store, max_sources=5, clock=Clock())
    for n in range(50):
        await audit.record(refusal(f"198.51.100.{n}"))
    assert audit.tracked == 6  # five addresses and the overflow window
    await audit.aclose()
    rows = await store.audit_entries()
    assert sum(1 for r in rows if r.type == "http.request_refused") == 6
    [overflow] = [r for r in rows if r.type == COLLAPSED]
    assert overflow.detail["count"] == 44 and overflow.source == "channel:http"
    assert accounted(rows) == 50


async def test_caller_text_is_cut_with_a_marker_before_it_reaches_the_log(store: Store) -> None:
    audit = RefusalAudit(store, clock=Clock())
    long_path = "/api/incidents/" + "x" * 5000
    await audit.record(refusal(path=long_path))
    [row] = await store.audit_entries()
    assert row.target is not None and len(row.target) == 256 and row.target.endswith("…[cut]")
    assert clip("short", 10) == "short"


class FailingStore:
    """A store whose database is gone: every append raises."""

    async def append_audit(self, event: object) -> None:
        raise ConnectionError("the database is gone")


async def test_a_store_that_fails_does_not_turn_a_refusal_into_an_error() -> None:
    audit = RefusalAudit(FailingStore(), clock=Clock())
    for _ in range(3):
        await audit.record(refusal())  # logged, not raised
    await audit.aclose()
    assert (audit.written, audit.collapsed, audit.tracked) == (0, 0, 0)
