"""LangGraph checkpointers on the store's own database, so any worker can resume a playbook graph.

SQLite: an `AsyncSqliteSaver` on the same file (its tables sit beside the store's; WAL lets both
write), whose writes wait on the busy timeout and are re-run on lock contention like the store's
transactions, so a worker under load never fails with `database is locked`. Postgres: an
`AsyncPostgresSaver` on the same database, its migrations applied under the advisory lock the
store's schema creation takes, so any number of workers may start together on a fresh database.
"""

from __future__ import annotations

import asyncio
import random
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import aiosqlite
import psycopg
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    BaseCheckpointSaver,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
)
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

from orchestrator.store.database import (
    BUSY_TIMEOUT_MS,
    PG_SCHEMA_LOCK,
    SQLITE_DRIVER,
    normalise_url,
)
from orchestrator.store.transactions import MAX_ATTEMPTS, SCHEMA_LOCK_WAIT_S
from orchestrator.store.uncancelled import to_the_end

_T = TypeVar("_T")
_BUSY = {sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED}


@asynccontextmanager
async def langgraph_checkpointer(
    url: str, allowed_types: Sequence[type] = ()
) -> AsyncIterator[BaseCheckpointSaver[str]]:
    """Yield a ready checkpointer for the store at `url` (the same URL `Store.open` takes).

    `allowed_types` are the classes graph state may hold; checkpoints carrying any other class
    are not deserialised into it (LangGraph's msgpack allow-list).
    """
    serde = JsonPlusSerializer(allowed_msgpack_modules=list(allowed_types) or None)
    normalised = normalise_url(url)
    if normalised.drivername == SQLITE_DRIVER:
        assert normalised.database is not None  # normalise_url refuses in-memory URLs
        async with aiosqlite.connect(normalised.database) as conn:
            await conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            await _retrying(conn, asyncio.Lock(), lambda: conn.execute("PRAGMA journal_mode=WAL"))
            await conn.execute("PRAGMA synchronous=NORMAL")
            saver = PatientSqliteSaver(conn, serde=serde)
            await saver.setup()
            yield saver
        return
    # psycopg takes a libpq URL, without SQLAlchemy's driver suffix.
    conninfo = normalised.set(drivername="postgresql").render_as_string(hide_password=False)
    async with AsyncPostgresSaver.from_conn_string(conninfo, serde=serde) as saver:
        await _setup_serialised(saver, conninfo)
        yield saver


async def _setup_serialised(saver: AsyncPostgresSaver, conninfo: str) -> None:
    """Apply the checkpointer's migrations holding the store's schema lock (on a connection of its
    own, released when it closes): unserialised, two workers starting together on a fresh
    database both insert migration 0 and one dies on `checkpoint_migrations_pkey`. The lock is
    tried, outside any transaction, never waited for in one: the migrations' `CREATE INDEX
    CONCURRENTLY` waits for every open transaction, a waiter's included."""
    async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as lock:
        deadline = asyncio.get_running_loop().time() + SCHEMA_LOCK_WAIT_S
        while not await _try_lock(lock):
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(
                    f"the schema lock was held for over {SCHEMA_LOCK_WAIT_S:g} s by another "
                    "process starting on this database"
                )
            await asyncio.sleep(random.uniform(0.02, 0.1))
        await saver.setup()


async def _try_lock(conn: psycopg.AsyncConnection[Any]) -> bool:
    cursor = await conn.execute("SELECT pg_try_advisory_lock(%s)", (PG_SCHEMA_LOCK,))
    row = await cursor.fetchone()
    return bool(row and row[0])


class PatientSqliteSaver(AsyncSqliteSaver):
    """`AsyncSqliteSaver` whose writes are re-run from the top when another writer held the
    lock past the busy timeout (the store's own writers, other workers' checkpoints), and finish
    even when their caller is cancelled.

    A write is an `INSERT` then a `COMMIT`, two awaits on the connection's thread. A cancelled
    activity (a terminated workflow, a lost heartbeat) used to stop between them, leaving the
    shared connection inside a write transaction: SQLite's one write lock stayed held until that
    connection's next checkpoint, and every other writer of the store (ingestion first) waited
    on it, for minutes when no graph ran next."""

    async def setup(self) -> None:
        await _retrying(self.conn, self.lock, super().setup)

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        put = super().aput
        return await _retrying(
            self.conn, self.lock, lambda: put(config, checkpoint, metadata, new_versions)
        )

    async def aput_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        put = super().aput_writes
        await _retrying(self.conn, self.lock, lambda: put(config, writes, task_id, task_path))

    async def adelete_thread(self, thread_id: str) -> None:
        delete = super().adelete_thread
        await _retrying(self.conn, self.lock, lambda: delete(thread_id))


async def _retrying(
    conn: aiosqlite.Connection, lock: asyncio.Lock, work: Callable[[], Awaitable[_T]]
) -> _T:
    """Run `work` to its end (see `PatientSqliteSaver`): a cancellation of the caller waits for
    it, then goes on; the connection never keeps a transaction open after it."""
    return await to_the_end(_retried(conn, lock, work))


async def _retried(
    conn: aiosqlite.Connection, lock: asyncio.Lock, work: Callable[[], Awaitable[_T]]
) -> _T:
    """Run `work`, rolling back and re-running it with jittered backoff while SQLite is busy.
    The rollback holds the saver's lock, under which its writes run: a transaction still open
    then is the failed write's own, never another write's half-done one."""
    for attempt in range(1, MAX_ATTEMPTS + 1):
        try:
            return await work()
        except sqlite3.OperationalError as error:
            if attempt == MAX_ATTEMPTS or (error.sqlite_errorcode & 0xFF) not in _BUSY:
                raise
            async with lock:
                if conn.in_transaction:
                    await conn.rollback()
        await asyncio.sleep(random.uniform(0, 0.02 * 2**attempt))
    raise AssertionError("unreachable")
