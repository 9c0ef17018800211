"""Console sessions in the store (`console_sessions`), shared by every server replica on the
database. The row is keyed by the SHA-256 of the session id: the id itself (the cookie's value)
is never stored, so a copy of the table signs nobody in. The rules (expiry, rotation at
sign-in) are the console's (`orchestrator/console/sessions.py`); this is where they keep state.
Times are the wall clock's, as POSIX seconds at this boundary."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from sqlalchemy import delete, func, or_, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from orchestrator.console.sessions import SessionRecord
from orchestrator.store.columns import table_of
from orchestrator.store.tables import ConsoleSessionRow
from orchestrator.store.transactions import Transactions

_SESSIONS = table_of(ConsoleSessionRow)


def _at(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


class ConsoleSessions:
    """`orchestrator.console.sessions.SessionRecords` on the store's database."""

    def __init__(self, db: Transactions) -> None:
        self._db = db

    async def load(self, id_hash: str) -> SessionRecord | None:
        row = await self._db.first(
            select(ConsoleSessionRow).where(ConsoleSessionRow.id_hash == id_hash)
        )
        if row is None:
            return None
        flash = tuple((str(k), str(t)) for k, t in json.loads(row.flash or "[]"))
        return SessionRecord(
            row.id_hash, row.csrf, row.user, row.started.timestamp(), row.seen.timestamp(), flash
        )

    async def add(self, record: SessionRecord) -> None:
        values = {
            "id_hash": record.id_hash,
            "csrf": record.csrf,
            "user": record.user,
            "started": _at(record.started),
            "seen": _at(record.seen),
            "flash": json.dumps(record.flash),
        }

        async def work(session: AsyncSession) -> None:
            await session.exec(self._db.insert(ConsoleSessionRow, values))

        await self._db.run(work, write=True)

    async def touch(self, id_hash: str, seen: float) -> None:
        await self._update(id_hash, seen=_at(seen))

    async def set_flash(self, id_hash: str, flash: tuple[tuple[str, str], ...]) -> None:
        await self._update(id_hash, flash=json.dumps(flash))

    async def _update(self, id_hash: str, **values: object) -> None:
        async def work(session: AsyncSession) -> None:
            statement = update(_SESSIONS).where(_SESSIONS.c.id_hash == id_hash).values(**values)
            await session.exec(statement)  # type: ignore[call-overload]

        await self._db.run(work, write=True)

    async def remove(self, id_hash: str) -> None:
        async def work(session: AsyncSession) -> None:
            statement = delete(_SESSIONS).where(_SESSIONS.c.id_hash == id_hash)
            await session.exec(statement)  # type: ignore[call-overload]

        await self._db.run(work, write=True)

    async def purge(self, idle_before: float, started_before: float, max_anonymous: int) -> None:
        """Remove the expired sessions, and the oldest anonymous half past `max_anonymous`."""

        async def work(session: AsyncSession) -> None:
            expired = or_(
                _SESSIONS.c.seen < _at(idle_before), _SESSIONS.c.started < _at(started_before)
            )
            await session.exec(delete(_SESSIONS).where(expired))  # type: ignore[call-overload]
            anonymous = col(ConsoleSessionRow.user).is_(None)
            count = select(func.count()).select_from(_SESSIONS).where(anonymous)
            total = (await session.exec(count)).one()  # type: ignore[call-overload]
            if total <= max_anonymous:
                return
            oldest = (
                select(ConsoleSessionRow.id_hash)
                .where(anonymous)
                .order_by(col(ConsoleSessionRow.seen))
                .limit(total // 2 + 1)
            )
            doomed = list((await session.exec(oldest)).all())
            await session.exec(  # type: ignore[call-overload]
                delete(_SESSIONS).where(_SESSIONS.c.id_hash.in_(doomed))
            )

        await self._db.run(work, write=True)
