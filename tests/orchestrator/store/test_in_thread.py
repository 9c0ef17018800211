"""SQLite transactions run whole in the store's thread (`orchestrator/store/in_thread.py`): a
work function written against the async session runs there to its end, and one that awaits
anything else is refused with an error that says so, its transaction rolled back."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from orchestrator.store import Store
from orchestrator.store.in_thread import NotInThread


async def test_a_transaction_that_awaits_something_else_is_refused_and_rolled_back(
    tmp_path: Path,
) -> None:
    store = await Store.open(f"sqlite:///{tmp_path / 'g.db'}")
    try:
        db = store._db  # pyright: ignore[reportPrivateUsage]
        await db.run_core(lambda c: c.execute(text("CREATE TABLE probe (n INTEGER)")), write=True)

        async def sleeps(connection: AsyncConnection) -> None:
            await connection.execute(text("INSERT INTO probe VALUES (1)"))
            await asyncio.sleep(0)

        with pytest.raises(NotInThread, match="awaited something other than its session"):
            await db.run_core(sleeps, write=True)

        async def rows(connection: AsyncConnection) -> list[int]:
            return [n for (n,) in await connection.execute(text("SELECT n FROM probe"))]

        assert await db.run_core(rows, write=False) == []
    finally:
        await store.close()
