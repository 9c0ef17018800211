"""Store fixtures: every test runs on a SQLite file and on a throwaway PostgreSQL database.

The Postgres leg needs the server on 127.0.0.1:5432 (trust auth, user `postgres` or `root`); it
creates one uniquely named database per session, empties the store's tables before each test,
and drops the database at the end. Without the server those params are skipped.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import text

from orchestrator.store import AuditAnchor, Store
from orchestrator.store.tables import STORE_TABLES

PG_HOST = "127.0.0.1:5432"
PG_USERS = ("postgres", "root")
PG_ADMIN_DB = "test"


def _admin_connection() -> tuple[psycopg.Connection, str]:
    errors: list[str] = []
    for user in PG_USERS:
        try:
            conn = psycopg.connect(f"postgresql://{user}@{PG_HOST}/{PG_ADMIN_DB}", autocommit=True)
        except psycopg.OperationalError as error:
            errors.append(f"{user}: {error}")
            continue
        return conn, user
    message = f"PostgreSQL not reachable on {PG_HOST}: {'; '.join(errors)}"
    if os.environ.get("GARRISON_REQUIRE_POSTGRES") == "1":
        pytest.fail(message)  # CI has the server: its absence is a failure, not a skip
    pytest.skip(message)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    admin, user = _admin_connection()
    name = f"garrison_store_{uuid.uuid4().hex[:12]}"
    admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql://{user}@{PG_HOST}/{name}"
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'garrison.db'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def anchor(tmp_path: Path) -> AuditAnchor:
    return AuditAnchor(tmp_path / "anchor" / "audit-anchor.jsonl")


@pytest.fixture
async def store(db_url: str, anchor: AuditAnchor) -> AsyncIterator[Store]:
    store = await Store.open(db_url, anchor=anchor)
    if store.engine.dialect.name == "postgresql":
        names = ", ".join(table.name for table in STORE_TABLES)
        async with store.engine.begin() as conn:
            await conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY"))
    yield store
    await store.close()
