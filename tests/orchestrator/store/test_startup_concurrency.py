"""Start-up is safe for N workers at once: each opens the LangGraph checkpointer and the store on
one fresh database, together, and every one starts (LangGraph's own Postgres `setup()`, run
unserialised, dies on `checkpoint_migrations_pkey` or `pg_type_typname_nsp_index` every time).
And the SQLite checkpointer writes through a writer that holds the lock past the busy timeout."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from langgraph.checkpoint.base import empty_checkpoint
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver

from orchestrator.store import Store, langgraph_checkpointer
from orchestrator.store.database import BUSY_TIMEOUT_MS
from tests.orchestrator.store.conftest import PG_HOST, _admin_connection

WORKERS = 4


@pytest.fixture
def fresh_postgres() -> Iterator[str]:
    """A database of its own, created empty for this test."""
    admin, user = _admin_connection()
    name = f"garrison_start_{uuid.uuid4().hex[:12]}"
    admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql://{user}@{PG_HOST}/{name}"
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


async def start_worker(url: str) -> None:
    """What a worker's runtime opens first: the store, and the checkpointer, each concurrently
    with every other worker's."""
    store = await Store.open(url)
    try:
        async with langgraph_checkpointer(url):
            await store.get_incident("none")  # the store's tables are there
    finally:
        await store.close()


async def test_workers_starting_together_on_a_fresh_sqlite_file_all_start(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'garrison.db'}"
    results = await asyncio.gather(
        *(start_worker(url) for _ in range(WORKERS)), return_exceptions=True
    )
    assert [r for r in results if isinstance(r, BaseException)] == []


@pytest.mark.postgres
async def test_workers_starting_together_on_a_fresh_postgres_database_all_start(
    fresh_postgres: str,
) -> None:
    results = await asyncio.gather(
        *(start_worker(fresh_postgres) for _ in range(WORKERS)), return_exceptions=True
    )
    assert [r for r in results if isinstance(r, BaseException)] == []
    with psycopg.connect(fresh_postgres) as conn:
        versions = [v for (v,) in conn.execute("SELECT v FROM checkpoint_migrations ORDER BY v")]
    assert versions == list(range(len(AsyncPostgresSaver.MIGRATIONS)))  # each applied once


@pytest.mark.postgres
async def test_unserialised_checkpointer_setup_is_what_fails(fresh_postgres: str) -> None:
    """The failure the lock prevents, shown on LangGraph's own setup (so the test above can
    fail): several at once on a fresh database, and at least one of them dies."""

    async def bare_setup() -> None:
        async with AsyncPostgresSaver.from_conn_string(fresh_postgres) as saver:
            await saver.setup()

    results = await asyncio.gather(*(bare_setup() for _ in range(WORKERS)), return_exceptions=True)
    assert any(isinstance(r, psycopg.errors.UniqueViolation) for r in results)


def hold_write_lock(path: Path, seconds: float, held: threading.Event) -> None:
    """Another process's long write transaction (an ingestion batch under load)."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        held.set()
        time.sleep(seconds)
        conn.execute("COMMIT")
    finally:
        conn.close()


async def test_sqlite_checkpointer_writes_through_a_lock_held_past_the_busy_timeout(
    tmp_path: Path,
) -> None:
    path = tmp_path / "garrison.db"
    url = f"sqlite:///{path}"
    store = await Store.open(url)
    async with langgraph_checkpointer(url):
        pass  # the checkpointer's tables exist: the writers below only write
    held = threading.Event()
    holder = threading.Thread(
        target=hold_write_lock, args=(path, BUSY_TIMEOUT_MS / 1000 + 1.5, held)
    )
    holder.start()
    held.wait(5)

    async def write(thread: str, count: int) -> int:
        async with langgraph_checkpointer(url) as saver:
            for _ in range(count):
                config = {"configurable": {"thread_id": thread, "checkpoint_ns": ""}}
                await saver.aput(config, empty_checkpoint(), {}, {})  # type: ignore[arg-type]
        return count

    try:
        written = await asyncio.gather(
            *(write(f"incident-{n}", 25) for n in range(WORKERS)), return_exceptions=True
        )
    finally:
        await asyncio.to_thread(holder.join)
        await store.close()
    assert written == [25] * WORKERS  # no `database is locked`, nothing lost
    with sqlite3.connect(path) as conn:
        (rows,) = conn.execute("SELECT count(*) FROM checkpoints").fetchone()
    assert rows == 25 * WORKERS
