"""Short transactions with retry on lock contention, shared by every `Store` method.

Writes begin `IMMEDIATE` on SQLite (see `database.py`); any transaction that loses a lock race
(SQLite busy, Postgres serialization failure or deadlock) is re-run from the top with jittered
backoff, so callers never see `database is locked`.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

from sqlalchemy import func
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import SQLModel, select
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.expression import SelectOfScalar

from orchestrator.store.database import is_retryable, is_sqlite, writer
from orchestrator.store.tables import STORE_TABLES, table_of

T = TypeVar("T")
R = TypeVar("R")

MAX_ATTEMPTS = 8
# pg_advisory_xact_lock key serialising schema creation by concurrently starting processes.
_PG_SCHEMA_LOCK = int.from_bytes(b"garr-ddl", "big", signed=True)


class Transactions:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.sqlite = is_sqlite(engine)
        self._writer = writer(engine)

    async def run(self, work: Callable[[AsyncSession], Awaitable[T]], *, write: bool) -> T:
        """Run `work` in one transaction, re-running it from the top on lock contention."""
        engine = self._writer if write else self.engine
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                async with (
                    AsyncSession(engine, expire_on_commit=False) as session,
                    session.begin(),
                ):
                    return await work(session)
            except DBAPIError as error:
                if attempt == MAX_ATTEMPTS or not is_retryable(error):
                    raise
            await asyncio.sleep(random.uniform(0, 0.02 * 2**attempt))
        raise AssertionError("unreachable")

    async def first(self, query: SelectOfScalar[R]) -> R | None:
        async def work(session: AsyncSession) -> R | None:
            return (await session.exec(query)).first()

        return await self.run(work, write=False)

    async def all(self, query: SelectOfScalar[R]) -> list[R]:
        async def work(session: AsyncSession) -> list[R]:
            return list((await session.exec(query)).all())

        return await self.run(work, write=False)

    def insert(self, model: type[SQLModel], values: Mapping[str, Any]) -> Any:
        """A dialect INSERT (Core, not ORM) that offers `on_conflict_do_nothing/do_update`."""
        dialect = sqlite if self.sqlite else postgresql
        return dialect.insert(table_of(model)).values(**values)

    async def create_tables(self) -> None:
        async def work(session: AsyncSession) -> None:
            if not self.sqlite:
                await session.exec(select(func.pg_advisory_xact_lock(_PG_SCHEMA_LOCK)))
            connection = await session.connection()
            await connection.run_sync(SQLModel.metadata.create_all, tables=list(STORE_TABLES))

        await self.run(work, write=True)


async def fetch_one(session: AsyncSession, query: SelectOfScalar[R]) -> R | None:
    return (await session.exec(query)).first()
