"""LangGraph checkpointers on the store's own database, so any worker can resume a playbook graph.

SQLite: an `AsyncSqliteSaver` on the same file (its tables sit beside the store's; WAL lets both
write). Postgres: an `AsyncPostgresSaver` on the same database, with its migrations applied.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import aiosqlite
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

from orchestrator.store.database import BUSY_TIMEOUT_MS, SQLITE_DRIVER, normalise_url


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
            saver = AsyncSqliteSaver(conn, serde=serde)
            await saver.setup()
            yield saver
        return
    # psycopg takes a libpq URL, without SQLAlchemy's driver suffix.
    conninfo = normalised.set(drivername="postgresql").render_as_string(hide_password=False)
    async with AsyncPostgresSaver.from_conn_string(conninfo, serde=serde) as saver:
        await saver.setup()
        yield saver
