"""Short transactions with retry on lock contention, shared by every `Store` method.

On SQLite each transaction runs whole in one of the store's threads (`in_thread.py`), so the
write lock is held for its statements alone. Writes begin `IMMEDIATE` on SQLite (see
`database.py`); any transaction that loses a lock race (SQLite busy, Postgres serialization
failure or deadlock) is re-run from the top with jittered backoff, so callers never see
`database is locked`. A read whose connection was lost is re-run
on a fresh connection too (the pool pings before reuse, but a session can die mid-query).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

from sqlalchemy import Connection, func, inspect
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlmodel import SQLModel, select
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.expression import SelectOfScalar

from orchestrator.store.columns import table_of
from orchestrator.store.database import PG_SCHEMA_LOCK, is_retryable, is_sqlite, writer
from orchestrator.store.in_thread import ThreadedSqlite
from orchestrator.store.tables import STORE_TABLES
from orchestrator.store.uncancelled import to_the_end

T = TypeVar("T")
R = TypeVar("R")

MAX_ATTEMPTS = 8
# Columns added to a table after it first shipped, with their DDL: a database created before
# gets them when a process opens it (`create_all` creates missing tables, never columns).
ADDED_COLUMNS = (
    ("actions", "attempts", "INTEGER NOT NULL DEFAULT 0"),
    ("incidents", "knowledge_version", "VARCHAR"),
)
SCHEMA_LOCK_WAIT_S = 300.0


class Transactions:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.sqlite = is_sqlite(engine)
        self._writer = writer(engine)
        # SQLite: every transaction whole in one thread hop (`in_thread.py`).
        self._threaded = ThreadedSqlite(engine) if self.sqlite else None

    async def run(self, work: Callable[[AsyncSession], Awaitable[T]], *, write: bool) -> T:
        """Run `work` in one transaction, re-running it from the top on lock contention."""
        if self._threaded is not None:
            threaded = self._threaded
            return await self._attempts(lambda: threaded.session(work, write), write=write)

        async def once() -> T:
            engine = self._writer if write else self.engine
            async with AsyncSession(engine, expire_on_commit=False) as session, session.begin():
                return await work(session)

        return await self._attempts(once, write=write)

    async def run_core(self, work: Callable[[AsyncConnection], Awaitable[T]], *, write: bool) -> T:
        """`run` for work of Core statements only: on a connection, without an ORM session."""
        if self._threaded is not None:
            threaded = self._threaded
            return await self._attempts(lambda: threaded.connection(work, write), write=write)

        async def once() -> T:
            async with (self._writer if write else self.engine).begin() as connection:
                return await work(connection)

        return await self._attempts(once, write=write)

    async def release_connections(self) -> None:
        """Close every pooled connection (the next transaction opens one)."""
        if self._threaded is not None:
            self._threaded.release_connections()
        await self.engine.dispose()

    async def dispose(self) -> None:
        if self._threaded is not None:
            self._threaded.dispose()
        await self.engine.dispose()

    async def _attempts(self, once: Callable[[], Awaitable[T]], *, write: bool) -> T:
        """Run `once` until it is not refused for contention, to its end even when the caller is
        cancelled (`uncancelled.py`)."""
        return await to_the_end(self._retried(once, write=write))

    async def _retried(self, once: Callable[[], Awaitable[T]], *, write: bool) -> T:
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                return await once()
            except DBAPIError as error:
                # A read whose connection died (a restarted database, a cut session) is run
                # again on a fresh one; a write is not, since its commit may have landed.
                lost = not write and error.connection_invalidated
                if attempt == MAX_ATTEMPTS or not (is_retryable(error) or lost):
                    raise
            await asyncio.sleep(random.uniform(0, 0.02 * 2**attempt))
        raise AssertionError("unreachable")

    async def first(self, query: SelectOfScalar[R], **params: Any) -> R | None:
        """The first row of `query`, its bound parameters (`bindparam`) given as `params`."""

        async def work(session: AsyncSession) -> R | None:
            return (await session.exec(query, params=params or None)).first()

        return await self.run(work, write=False)

    async def all(self, query: SelectOfScalar[R], **params: Any) -> list[R]:
        async def work(session: AsyncSession) -> list[R]:
            return list((await session.exec(query, params=params or None)).all())

        return await self.run(work, write=False)

    def insert(self, model: type[SQLModel], values: Mapping[str, Any]) -> Any:
        """A dialect INSERT (Core, not ORM) that offers `on_conflict_do_nothing/do_update`."""
        dialect = sqlite if self.sqlite else postgresql
        return dialect.insert(table_of(model)).values(**values)

    async def create_tables(self) -> None:
        """Create the store's missing tables and columns (see `create_schema`)."""
        await self.create_schema(_create_store_schema)

    async def create_schema(self, create: Callable[[Connection], None]) -> None:
        """Run `create` (DDL) once however many processes start together: on SQLite in an
        IMMEDIATE transaction, on Postgres in the transaction that took the schema lock. The lock
        is tried, never waited for inside a transaction: a waiting transaction would stall the
        checkpointer's `CREATE INDEX CONCURRENTLY` in another process, which holds the lock, and
        neither would ever finish."""

        async def work(session: AsyncSession) -> bool:
            if not self.sqlite:
                lock = select(func.pg_try_advisory_xact_lock(PG_SCHEMA_LOCK))
                if not (await session.exec(lock)).one():
                    return False
            connection = await session.connection()
            await connection.run_sync(create)
            return True

        deadline = asyncio.get_running_loop().time() + SCHEMA_LOCK_WAIT_S
        while not await self.run(work, write=True):
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(
                    f"the schema lock was held for over {SCHEMA_LOCK_WAIT_S:g} s by another "
                    "process starting on this database"
                )
            await asyncio.sleep(random.uniform(0.02, 0.1))


def _create_store_schema(connection: Connection) -> None:
    SQLModel.metadata.create_all(connection, tables=list(STORE_TABLES))
    inspector = inspect(connection)
    for table, column, ddl in ADDED_COLUMNS:
        if column not in {found["name"] for found in inspector.get_columns(table)}:
            connection.exec_driver_sql(f"ALTER TABLE {table} ADD COLUMN {column} {ddl}")


async def fetch_one(session: AsyncSession, query: SelectOfScalar[R], **params: Any) -> R | None:
    return (await session.exec(query, params=params or None)).first()
