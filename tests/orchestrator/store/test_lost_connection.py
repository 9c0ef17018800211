"""A database connection lost mid-request: a read is run again on a fresh connection; a write is
not (its commit may have landed) and reaches the caller, which the HTTP API answers 503 with a
Retry-After, never 500. Found by `bench.fuzz_api` on PostgreSQL with sessions cut mid-read."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel.ext.asyncio.session import AsyncSession

from orchestrator.approvals.directory import ApproverDirectory
from orchestrator.approvals.service import ApprovalService
from orchestrator.server.app import ServerDeps, create_app
from orchestrator.server.tokens import ApiTokens, digest
from orchestrator.store.repository import Store
from tools.emulators.serve import serve


async def cut_own_session(session: AsyncSession) -> None:
    """The server ends this session's backend, as a restart or an administrator would."""
    await session.execute(text("SELECT pg_terminate_backend(pg_backend_pid())"))


@pytest.mark.postgres
async def test_a_read_whose_session_is_cut_runs_again_on_a_fresh_connection(
    postgres_url: str,
) -> None:
    store = await Store.open(postgres_url)
    attempts = 0

    async def read(session: AsyncSession) -> int:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            await cut_own_session(session)
        return (await session.execute(text("SELECT 41 + 1"))).scalar_one()

    try:
        assert await store._db.run(read, write=False) == 42  # pyright: ignore[reportPrivateUsage]
        assert attempts == 2
    finally:
        await store.close()


@pytest.mark.postgres
async def test_a_write_whose_session_is_cut_is_not_run_again(postgres_url: str) -> None:
    store = await Store.open(postgres_url)
    attempts = 0

    async def write(session: AsyncSession) -> None:
        nonlocal attempts
        attempts += 1
        await cut_own_session(session)

    try:
        with pytest.raises(DBAPIError) as caught:
            await store._db.run(write, write=True)  # pyright: ignore[reportPrivateUsage]
        assert caught.value.connection_invalidated and attempts == 1
    finally:
        await store.close()


@pytest.mark.postgres
async def test_core_work_is_rerun_as_session_work_is(postgres_url: str) -> None:
    """`run_core` (Core statements on a bare connection) keeps `run`'s rules: a read cut
    mid-way runs again; a write cut mid-way reaches the caller."""
    store = await Store.open(postgres_url)
    attempts = 0

    async def read(connection: AsyncConnection) -> int:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            await connection.execute(text("SELECT pg_terminate_backend(pg_backend_pid())"))
        return (await connection.execute(text("SELECT 41 + 1"))).scalar_one()

    async def write(connection: AsyncConnection) -> None:
        await connection.execute(text("SELECT pg_terminate_backend(pg_backend_pid())"))

    try:
        db = store._db  # pyright: ignore[reportPrivateUsage]
        assert await db.run_core(read, write=False) == 42
        assert attempts == 2
        with pytest.raises(DBAPIError) as caught:
            await db.run_core(write, write=True)
        assert caught.value.connection_invalidated
    finally:
        await store.close()


async def test_the_api_answers_503_with_retry_after_when_the_store_cannot_be_read(
    tmp_path: Path,
) -> None:
    database = tmp_path / "g.db"
    store = await Store.open(f"sqlite:///{database}")
    deps = ServerDeps(
        store=store,
        approvals=ApprovalService(None, store, ApproverDirectory(groups={}), "agent"),  # type: ignore[arg-type]
        tokens=ApiTokens(tokens={"alice": digest("tok-alice")}),
    )
    headers = {"authorization": "Bearer tok-alice"}
    try:
        async with serve(create_app(deps)) as base, httpx.AsyncClient(base_url=base) as http:
            assert (await http.get("/api/approvals", headers=headers)).status_code == 200
            await store._db.release_connections()  # no connection kept open on the old file
            database.write_bytes(b"not a database at all" * 1024)  # the disk gave back garbage
            answer = await http.get("/api/approvals", headers=headers)
        assert answer.status_code == 503, answer.text
        assert answer.headers["retry-after"].isdigit()
        assert "store could not be reached" in answer.json()["detail"]
    finally:
        await deps.aclose()
        await store.close()
