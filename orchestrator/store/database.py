"""Engines for the store: URL normalisation, SQLite pragmas and transaction modes, retry rules.

SQLite is the embedded default and Postgres the production store. Postgres is reached through
SQLAlchemy's asyncio layer (psycopg 3); SQLite's transactions run whole in the store's threads on
synchronous connections (`in_thread.py`; the async engine remains for the schema and tools that
ask for it). On SQLite every connection runs in WAL mode with
a busy timeout, and SQLAlchemy (not the sqlite3 module) emits `BEGIN`: write transactions begin
`IMMEDIATE`, so a writer takes the write lock up front and waits on the busy timeout instead of
failing when it later upgrades a read lock (the classic `database is locked` under contention).
"""

from __future__ import annotations

import sqlite3
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

SQLITE_DRIVER = "sqlite+aiosqlite"
POSTGRES_DRIVER = "postgresql+psycopg"

# Execution option read by the `begin` hook: which BEGIN a SQLite transaction emits.
BEGIN_MODE = "garrison_sqlite_begin"
BUSY_TIMEOUT_MS = 5_000
# Advisory lock key serialising schema changes by processes starting together on one Postgres
# database: the store's table creation and the LangGraph checkpointer's migrations.
PG_SCHEMA_LOCK = int.from_bytes(b"garr-ddl", "big", signed=True)

_SQLITE_NAMES = {"sqlite", "sqlite+pysqlite", "sqlite+aiosqlite"}
_POSTGRES_NAMES = {
    "postgres",
    "postgresql",
    "postgresql+psycopg",
    "postgresql+psycopg2",
    "postgresql+asyncpg",
}
_SQLITE_BUSY_CODES = {sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED}
# serialization_failure, deadlock_detected: the transaction is safe to run again.
_POSTGRES_RETRY_STATES = {"40001", "40P01"}


def normalise_url(url: str) -> URL:
    """Map `sqlite:///x`, `postgresql://...` and friends onto the async drivers Garrison uses."""
    parsed = make_url(url)
    if parsed.drivername in _SQLITE_NAMES:
        if parsed.database in (None, "", ":memory:"):
            raise ValueError(
                "an in-memory SQLite store would differ per connection; use a file path"
            )
        return parsed.set(drivername=SQLITE_DRIVER)
    if parsed.drivername in _POSTGRES_NAMES:
        return parsed.set(drivername=POSTGRES_DRIVER)
    raise ValueError(f"unsupported database URL scheme {parsed.drivername!r}")


def is_sqlite(engine: AsyncEngine) -> bool:
    return engine.dialect.name == "sqlite"


def create_engine_for(url: str) -> AsyncEngine:
    """An async engine for a SQLite file or a Postgres database, configured for concurrent use."""
    normalised = normalise_url(url)
    if normalised.drivername == SQLITE_DRIVER:
        engine = create_async_engine(normalised)
        _configure_sqlite(engine.sync_engine)
        return engine
    return create_async_engine(normalised, pool_pre_ping=True)


def sync_engine_for(engine: AsyncEngine) -> Engine:
    """A synchronous engine on the same database, for work that runs whole in one worker thread
    (ingestion's batch transaction). Its SQLite transactions begin IMMEDIATE, like the writer's."""
    url = engine.url
    if url.drivername == SQLITE_DRIVER:
        sync = create_engine(url.set(drivername="sqlite+pysqlite"))
        _configure_sqlite(sync, default_begin="IMMEDIATE")
        return sync
    return create_engine(url, pool_pre_ping=True, pool_size=2)


def _configure_sqlite(engine: Engine, default_begin: str = "DEFERRED") -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Hand BEGIN to SQLAlchemy (see `_on_begin`); pragmas run outside any transaction.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA foreign_keys=ON")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        mode = connection.get_execution_options().get(BEGIN_MODE, default_begin)
        connection.exec_driver_sql(f"BEGIN {mode}")


def writer(engine: AsyncEngine) -> AsyncEngine:
    """The same pool, with SQLite transactions that take the write lock when they begin."""
    return engine.execution_options(**{BEGIN_MODE: "IMMEDIATE"})


def is_retryable(error: DBAPIError) -> bool:
    """Lock contention that a fresh attempt of the whole transaction resolves."""
    original = error.orig
    if isinstance(original, sqlite3.OperationalError):
        return (original.sqlite_errorcode & 0xFF) in _SQLITE_BUSY_CODES
    return getattr(original, "sqlstate", None) in _POSTGRES_RETRY_STATES
