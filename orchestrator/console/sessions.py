"""Console sessions, kept server-side (in the store, so that every `garrison server` replica on
the database shares them): the cookie holds only a random id, the store only its SHA-256.

A visitor who has not signed in gets an anonymous session (a CSRF token for the sign-in form and
nothing else). Signing in ends that session and starts a new one under a new id (no fixation: an
id an attacker planted before sign-in is worth nothing after it). A session ends after
`idle_s` without a request, after `max_s` in all, or at sign-out. Ids and CSRF tokens are
256-bit values from `secrets`, compared in constant time. The clock is the wall clock (the
replicas share it, not a process's monotonic one).

`SessionRecords` is where sessions live: the store's `console_sessions` table
(`orchestrator/store/console_sessions.py`) or the in-memory twin here (tests, and a console
without a store)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Protocol

MAX_ANONYMOUS = 10_000  # anonymous sessions past this: the oldest half is dropped
# A request restarts the idle clock in the store only when it last did this long ago (at most a
# tenth of the idle limit): a page costs one read, not a write, and a session ends idle at most
# that much early.
TOUCH_EVERY_S = 30.0


@dataclass
class Session:
    id: str  # the cookie's value; never stored
    csrf: str
    user: str | None
    started: float
    seen: float
    flash: list[tuple[str, str]] = field(default_factory=list)  # (kind, text) shown once
    shown: list[tuple[str, str]] = field(default_factory=list, repr=False)  # flash as loaded

    def csrf_ok(self, presented: str | None) -> bool:
        return presented is not None and hmac.compare_digest(presented, self.csrf)


@dataclass(frozen=True)
class SessionRecord:
    """A session as kept: its id only as a hash."""

    id_hash: str
    csrf: str
    user: str | None
    started: float
    seen: float
    flash: tuple[tuple[str, str], ...] = ()


class SessionRecords(Protocol):
    async def load(self, id_hash: str) -> SessionRecord | None: ...

    async def add(self, record: SessionRecord) -> None: ...

    async def touch(self, id_hash: str, seen: float) -> None: ...

    async def set_flash(self, id_hash: str, flash: tuple[tuple[str, str], ...]) -> None: ...

    async def remove(self, id_hash: str) -> None: ...

    async def purge(self, idle_before: float, started_before: float, max_anonymous: int) -> None:
        """Remove the expired sessions, and the oldest anonymous half past `max_anonymous`."""
        ...


def id_hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


class MemorySessionRecords:
    """The in-memory twin of the store's `console_sessions`."""

    def __init__(self) -> None:
        self.records: dict[str, SessionRecord] = {}

    async def load(self, id_hash: str) -> SessionRecord | None:
        return self.records.get(id_hash)

    async def add(self, record: SessionRecord) -> None:
        self.records[record.id_hash] = record

    async def touch(self, id_hash: str, seen: float) -> None:
        if (record := self.records.get(id_hash)) is not None:
            self.records[id_hash] = replace(record, seen=seen)

    async def set_flash(self, id_hash: str, flash: tuple[tuple[str, str], ...]) -> None:
        if (record := self.records.get(id_hash)) is not None:
            self.records[id_hash] = replace(record, flash=flash)

    async def remove(self, id_hash: str) -> None:
        self.records.pop(id_hash, None)

    async def purge(self, idle_before: float, started_before: float, max_anonymous: int) -> None:
        for key, r in list(self.records.items()):
            if r.seen < idle_before or r.started < started_before:
                del self.records[key]
        anonymous = sorted((r for r in self.records.values() if r.user is None), key=_seen)
        if len(anonymous) > max_anonymous:
            for r in anonymous[: len(anonymous) // 2 + 1]:
                del self.records[r.id_hash]


def _seen(record: SessionRecord) -> float:
    return record.seen


class SessionStore:
    def __init__(
        self,
        idle_s: float,
        max_s: float,
        records: SessionRecords | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.idle_s = idle_s
        self.max_s = max_s
        self.records: SessionRecords = records if records is not None else MemorySessionRecords()
        self._clock = clock

    async def get(self, session_id: str | None) -> Session | None:
        """The live session of this id (its idle clock restarted), or None."""
        if not session_id or len(session_id) > 128:
            return None
        key = id_hash(session_id)
        record = await self.records.load(key)
        if record is None:
            return None
        now = self._clock()
        if now - record.seen > self.idle_s or now - record.started > self.max_s:
            await self.records.remove(key)
            return None
        seen = record.seen
        if now - seen >= min(TOUCH_EVERY_S, self.idle_s / 10):
            await self.records.touch(key, now)
            seen = now
        flash = list(record.flash)
        return Session(session_id, record.csrf, record.user, record.started, seen, flash, flash[:])

    async def start(self, user: str | None = None) -> Session:
        now = self._clock()
        await self.records.purge(now - self.idle_s, now - self.max_s, MAX_ANONYMOUS)
        session = Session(secrets.token_urlsafe(32), secrets.token_urlsafe(32), user, now, now)
        await self.records.add(SessionRecord(id_hash(session.id), session.csrf, user, now, now))
        return session

    async def sign_in(self, previous: Session | None, user: str) -> Session:
        """A new session for `user`; the previous one (anonymous or not) ends."""
        if previous is not None:
            await self.end(previous.id)
        return await self.start(user)

    async def end(self, session_id: str) -> None:
        await self.records.remove(id_hash(session_id))

    async def save(self, session: Session) -> None:
        """Keep the session's messages when they changed (added, or shown and so cleared)."""
        if session.flash != session.shown:
            await self.records.set_flash(id_hash(session.id), tuple(session.flash))
            session.shown = session.flash[:]
