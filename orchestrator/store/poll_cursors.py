"""Where each polled alert source was read up to: one row per source (`poll_cursors`), the cursor
as JSON text, written only after the alerts it covers were committed to the sink.

The table is the pollers' own: `create_table` makes it (idempotently, serialised with the store's
own schema creation on Postgres) and `build_poll_activities` calls it, so `Store.open` and
`STORE_TABLES` need not know about it.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Text
from sqlmodel import Field, SQLModel, select
from sqlmodel.ext.asyncio.session import AsyncSession

from orchestrator.ingest.pollers.cursor import Cursor
from orchestrator.store.columns import UtcDateTime, table_of
from orchestrator.store.repository import Store
from orchestrator.store.transactions import Transactions


class PollCursorRow(SQLModel, table=True):
    __tablename__: str = "poll_cursors"  # type: ignore[misc]

    source: str = Field(primary_key=True)
    cursor: str = Field(sa_type=Text)
    updated_at: datetime = Field(sa_type=UtcDateTime)


_TABLE = table_of(PollCursorRow)


async def create_table(store: Store) -> None:
    """Under the store's schema lock (`Transactions.create_schema`): concurrent starts serialise."""
    await Transactions(store.engine).create_schema(
        lambda connection: SQLModel.metadata.create_all(connection, tables=[_TABLE])
    )


async def load_cursor(store: Store, source: str) -> Cursor | None:
    db = Transactions(store.engine)
    row = await db.first(select(PollCursorRow).where(PollCursorRow.source == source))
    return None if row is None else Cursor.model_validate_json(row.cursor)


async def save_cursor(store: Store, source: str, cursor: Cursor) -> None:
    db = Transactions(store.engine)
    values = {"source": source, "cursor": cursor.model_dump_json(), "updated_at": datetime.now(UTC)}

    async def work(session: AsyncSession) -> None:
        statement = db.insert(PollCursorRow, values).on_conflict_do_update(
            index_elements=[_TABLE.c.source],
            set_={"cursor": values["cursor"], "updated_at": values["updated_at"]},
        )
        await session.exec(statement)

    await db.run(work, write=True)


class StoreCursors:
    """`CursorStore` over the store's database."""

    def __init__(self, store: Store) -> None:
        self._store = store

    async def load(self, source: str) -> Cursor | None:
        return await load_cursor(self._store, source)

    async def save(self, source: str, cursor: Cursor) -> None:
        await save_cursor(self._store, source, cursor)
