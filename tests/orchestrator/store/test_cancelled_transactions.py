"""A store transaction whose caller is cancelled (a terminated workflow's activity, a lost
heartbeat) runs to its end before the cancellation goes on: never cut between its statements,
never left open holding SQLite's write lock (ingestion then waited on it for minutes)."""

from __future__ import annotations

import asyncio
import threading

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from orchestrator.store import Store
from orchestrator.store.uncancelled import to_the_end


async def test_a_cancelled_write_commits_whole_then_the_caller_sees_the_cancellation(
    store: Store,
) -> None:
    db = store._db  # the transactions every Store method runs in
    await db.run_core(
        lambda c: c.execute(text("CREATE TABLE IF NOT EXISTS probe (n INTEGER)")), write=True
    )
    await db.run_core(lambda c: c.execute(text("DELETE FROM probe")), write=True)
    loop = asyncio.get_running_loop()
    halfway = asyncio.Event()
    # On SQLite the transaction runs whole in the store's thread (`in_thread.py`), where it
    # waits on a thread's event; on Postgres, on the event loop.
    go_on_in_thread = threading.Event()
    go_on = asyncio.Event()

    async def two_rows(connection: AsyncConnection) -> None:
        await connection.execute(text("INSERT INTO probe VALUES (1)"))
        loop.call_soon_threadsafe(halfway.set)
        # The caller is cancelled here, between the two statements.
        if db.sqlite:
            go_on_in_thread.wait(timeout=10)
        else:
            await go_on.wait()
        await connection.execute(text("INSERT INTO probe VALUES (2)"))

    caller = asyncio.ensure_future(db.run_core(two_rows, write=True))
    await halfway.wait()
    caller.cancel()
    await asyncio.sleep(0.05)
    assert not caller.done()  # held until the transaction ends
    go_on_in_thread.set()
    go_on.set()
    with pytest.raises(asyncio.CancelledError):
        await caller

    async def rows(connection: AsyncConnection) -> list[int]:
        return [n for (n,) in await connection.execute(text("SELECT n FROM probe ORDER BY n"))]

    assert await db.run_core(rows, write=False) == [1, 2]
    # And the write lock is free: another write goes through at once.
    await asyncio.wait_for(
        db.run_core(lambda c: c.execute(text("INSERT INTO probe VALUES (3)")), write=True), 2
    )


async def test_to_the_end_returns_work_that_was_not_cancelled_and_raises_its_errors() -> None:
    async def value() -> int:
        await asyncio.sleep(0)
        return 7

    async def broken() -> int:
        raise ValueError("the work's own error")

    assert await to_the_end(value()) == 7
    with pytest.raises(ValueError, match="own error"):
        await to_the_end(broken())
