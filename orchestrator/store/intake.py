"""The store's side of ingestion: alerts committed in batches with their grouping state (closed
incidents' groups included: they take late alerts), the outbox of workflow signals, the reopen of
a closed incident by its late alerts, dead letters, and signed-webhook deliveries.

`Intake.write(work)` runs `work` in one write transaction with an `IntakeTx`, through which
ingestion reads the grouping state and stages its rows; the rows are inserted in bulk when `work`
returns, and the transaction commits. The whole transaction runs in one worker thread on a
synchronous connection of its own (a thread hop per batch rather than one per statement: the
hot path of `POST /api/alerts`). On Postgres the transaction first takes an advisory lock, so
grouping decisions of several API processes are serialised (SQLite's `BEGIN IMMEDIATE` does the
same for the embedded store).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, func, update
from sqlalchemy.exc import DBAPIError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from orchestrator.store import mapping
from orchestrator.store.columns import table_of
from orchestrator.store.database import is_retryable, sync_engine_for
from orchestrator.store.intake_tables import DeadLetterRow, IntakeRow, WebhookDeliveryRow
from orchestrator.store.intake_tx import IntakeSql, IntakeTx, chunks
from orchestrator.store.records import IncidentRecord
from orchestrator.store.tables import IncidentRow
from orchestrator.store.transactions import MAX_ATTEMPTS, Transactions
from tools.models import IncidentStatus

T = TypeVar("T")
_INTAKE = table_of(IntakeRow)
_DEAD = table_of(DeadLetterRow)
_PG_INGEST_LOCK = int.from_bytes(b"garr-ing", "big", signed=True)


@dataclass(frozen=True)
class Unsignalled:
    fingerprint: str
    incident_id: str
    alert_uid: str


@dataclass(frozen=True)
class DeadLetter:
    id: int
    received_at: datetime
    channel: str
    shape: str | None
    reason: str
    body: str
    status: str
    attempts: int
    alert_id: str | None


class Intake:
    def __init__(self, db: Transactions) -> None:
        self._db = db
        self._sync: Engine | None = None

    def _engine(self) -> Engine:
        if self._sync is None:
            self._sync = sync_engine_for(self._db.engine)
        return self._sync

    async def write(self, work: Callable[[IntakeTx], T]) -> T:
        """Run `work` and commit what it staged, in one write transaction (in a thread)."""
        return await asyncio.to_thread(self._in_transaction, lambda c: self._grouped(c, work))

    def _grouped(self, connection: Connection, work: Callable[[IntakeTx], T]) -> T:
        if not self._db.sqlite:
            connection.execute(select(func.pg_advisory_xact_lock(_PG_INGEST_LOCK)))

        def staged(tx: IntakeTx) -> T:
            result = work(tx)
            tx.flush()
            return result

        return self._on_cursor(connection, staged)

    def _on_cursor(self, connection: Connection, work: Callable[[IntakeTx], T]) -> T:
        """`work` on the driver's cursor of the transaction's connection (`intake_tx`)."""
        cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
        try:
            return work(IntakeTx(cursor, IntakeSql(sqlite=self._db.sqlite)))
        finally:
            cursor.close()

    def _in_transaction(self, work: Callable[[Connection], T]) -> T:
        """`work` in one write transaction on the synchronous connection, run again from the top
        when it loses a lock race. Called in a worker thread: SQLite's write lock is held for the
        statements alone, never across turns of the event loop."""
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                with self._engine().begin() as connection:
                    return work(connection)
            except DBAPIError as error:
                if attempt == MAX_ATTEMPTS or not is_retryable(error):
                    raise
            time.sleep(random.uniform(0, 0.02 * 2**attempt))
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self._sync is not None:
            self._sync.dispose()

    # -- the outbox of signals ---------------------------------------------------------------

    async def unsignalled(self, limit: int, prefix: str | None = None) -> list[Unsignalled]:
        """Alerts committed and not yet signalled, oldest first; with `prefix`, only those of
        incidents whose id starts with it (a simulation run's own)."""
        query = (
            select(IntakeRow.fingerprint, IntakeRow.incident_id, IntakeRow.alert_uid)
            .where(col(IntakeRow.signalled_at).is_(None))
            .order_by(col(IntakeRow.received_at))
            .limit(limit)
        )
        if prefix is not None:
            query = query.where(col(IntakeRow.incident_id).startswith(prefix, autoescape=True))

        async def work(session: AsyncSession) -> list[Unsignalled]:
            return [Unsignalled(*row) for row in await session.exec(query)]

        return await self._db.run(work, write=False)

    async def backlog(self, prefix: str | None = None) -> int:
        query = (
            select(func.count()).select_from(IntakeRow).where(col(IntakeRow.signalled_at).is_(None))
        )
        if prefix is not None:
            query = query.where(col(IntakeRow.incident_id).startswith(prefix, autoescape=True))

        async def work(session: AsyncSession) -> int:
            return int((await session.exec(query)).one())

        return await self._db.run(work, write=False)

    async def mark_signalled(self, fingerprints: Sequence[str], at: datetime) -> None:
        """In a worker thread, like ingestion's writes, which would otherwise wait for SQLite's
        write lock while this update waited for the event loop between its statements."""

        def work(connection: Connection) -> None:
            self._on_cursor(connection, lambda tx: tx.mark_signalled(fingerprints, at))

        await asyncio.to_thread(self._in_transaction, work)

    async def incidents(self, ids: Sequence[str]) -> dict[str, IncidentRecord]:
        """The stored incidents among `ids`, by id: a dispatch pass reads the incidents it
        starts in one query."""

        async def work(session: AsyncSession) -> dict[str, IncidentRecord]:
            found: dict[str, IncidentRecord] = {}
            for chunk in chunks(ids):
                query = select(IncidentRow).where(col(IncidentRow.id).in_(chunk))
                for row in await session.exec(query):
                    found[row.id] = mapping.incident_record(row)
            return found

        return await self._db.run(work, write=False)

    async def reopen_incident(self, incident_id: str) -> bool:
        """A closed incident is open again (late alerts reopened it for another pass). Its
        `closed_at` stays until it closes again: the alerts received since are its late ones.
        False when it was not closed."""
        incidents = table_of(IncidentRow)
        statement = (
            update(incidents)
            .where(incidents.c.id == incident_id)
            .where(incidents.c.status == IncidentStatus.CLOSED.value)
            .values(status=IncidentStatus.OPEN.value)
        )

        async def work(session: AsyncSession) -> bool:
            return (await session.exec(statement)).rowcount == 1

        return await self._db.run(work, write=True)

    async def received_since(self, incident_id: str, since: datetime) -> list[str]:
        """The uids of the incident's alerts received at `since` or later, in arrival order."""
        query = (
            select(IntakeRow.alert_uid)
            .where(IntakeRow.incident_id == incident_id)
            .where(IntakeRow.received_at >= since)
            .order_by(col(IntakeRow.received_at))
        )

        async def work(session: AsyncSession) -> list[str]:
            return list(dict.fromkeys(await session.exec(query)))

        return await self._db.run(work, write=False)

    async def original(self, fingerprint: str) -> tuple[str, str, str] | None:
        """(source, shape, original record) of a stored alert."""
        query = select(IntakeRow.source, IntakeRow.shape, IntakeRow.original).where(
            IntakeRow.fingerprint == fingerprint
        )

        async def work(session: AsyncSession) -> tuple[str, str, str] | None:
            row = (await session.exec(query)).first()
            return None if row is None else (row[0], row[1], row[2])

        return await self._db.run(work, write=False)

    # -- dead letters ------------------------------------------------------------------------

    async def add_dead_letter(
        self, channel: str, body: str, reason: str, at: datetime, shape: str | None = None
    ) -> int:
        values = {
            "received_at": at,
            "channel": channel,
            "shape": shape,
            "reason": reason,
            "body": body,
            "status": "open",
            "attempts": 0,
        }

        async def work(session: AsyncSession) -> int:
            statement = self._db.insert(DeadLetterRow, values).returning(_DEAD.c.id)
            return int((await session.exec(statement)).one()[0])

        return await self._db.run(work, write=True)

    async def dead_letters(self, status: str | None = "open", limit: int = 100) -> list[DeadLetter]:
        query = select(DeadLetterRow).order_by(col(DeadLetterRow.id)).limit(limit)
        if status is not None:
            query = query.where(DeadLetterRow.status == status)
        return [_dead_letter(row) for row in await self._db.all(query)]

    async def dead_letter(self, letter_id: int) -> DeadLetter | None:
        row = await self._db.first(select(DeadLetterRow).where(DeadLetterRow.id == letter_id))
        return None if row is None else _dead_letter(row)

    async def settle_dead_letter(
        self, letter_id: int, *, accepted_as: str | None, reason: str | None = None
    ) -> None:
        """Count a retry: `accepted_as` the alert id it became, or still open with `reason`."""
        values: dict[str, Any] = {"attempts": _DEAD.c.attempts + 1}
        if accepted_as is not None:
            values |= {"status": "accepted", "alert_id": accepted_as}
        if reason is not None:
            values["reason"] = reason

        async def work(session: AsyncSession) -> None:
            await session.exec(update(_DEAD).where(_DEAD.c.id == letter_id).values(**values))

        await self._db.run(work, write=True)

    # -- signed webhooks ---------------------------------------------------------------------

    async def claim_delivery(self, key: str, at: datetime) -> bool:
        """True the first time a signed delivery is seen; False for its replay."""
        table = table_of(WebhookDeliveryRow)

        async def work(session: AsyncSession) -> bool:
            statement = self._db.insert(
                WebhookDeliveryRow, {"key": key, "received_at": at}
            ).on_conflict_do_nothing()
            return (await session.exec(statement.returning(table.c.key))).first() is not None

        return await self._db.run(work, write=True)


def _dead_letter(row: DeadLetterRow) -> DeadLetter:
    assert row.id is not None
    return DeadLetter(
        id=row.id,
        received_at=mapping.aware(row.received_at),
        channel=row.channel,
        shape=row.shape,
        reason=row.reason,
        body=row.body,
        status=row.status,
        attempts=row.attempts,
        alert_id=row.alert_id,
    )
