"""Console sessions, kept server-side in this process: the cookie holds only a random id.

A visitor who has not signed in gets an anonymous session (a CSRF token for the sign-in form and
nothing else). Signing in ends that session and starts a new one under a new id (no fixation: an
id an attacker planted before sign-in is worth nothing after it). A session ends after
`idle_s` without a request, after `max_s` in all, or at sign-out; a restart of the server signs
everyone out. Ids and CSRF tokens are 256-bit values from `secrets`, compared in constant time.
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field

MAX_SESSIONS = 10_000  # anonymous ones are dropped first, oldest first, past this


@dataclass
class Session:
    id: str
    csrf: str
    user: str | None
    started: float
    seen: float
    flash: list[tuple[str, str]] = field(default_factory=list)  # (kind, text) shown once

    def csrf_ok(self, presented: str | None) -> bool:
        return presented is not None and hmac.compare_digest(presented, self.csrf)


class SessionStore:
    def __init__(
        self, idle_s: float, max_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.idle_s = idle_s
        self.max_s = max_s
        self._clock = clock
        self._sessions: dict[str, Session] = {}

    def get(self, session_id: str | None) -> Session | None:
        """The live session of this id (its idle clock restarted), or None."""
        if not session_id:
            return None
        session = self._sessions.get(session_id)
        now = self._clock()
        if session is None:
            return None
        if now - session.seen > self.idle_s or now - session.started > self.max_s:
            del self._sessions[session_id]
            return None
        session.seen = now
        return session

    def start(self, user: str | None = None) -> Session:
        self._trim()
        now = self._clock()
        session = Session(secrets.token_urlsafe(32), secrets.token_urlsafe(32), user, now, now)
        self._sessions[session.id] = session
        return session

    def sign_in(self, previous: Session | None, user: str) -> Session:
        """A new session for `user`; the previous one (anonymous or not) ends."""
        if previous is not None:
            self.end(previous.id)
        return self.start(user)

    def end(self, session_id: str) -> None:
        self._sessions.pop(session_id, None)

    def _trim(self) -> None:
        if len(self._sessions) < MAX_SESSIONS:
            return
        now = self._clock()
        for sid, session in list(self._sessions.items()):
            if now - session.seen > self.idle_s or now - session.started > self.max_s:
                del self._sessions[sid]
        anonymous = [s for s in self._sessions.values() if s.user is None]
        for session in sorted(anonymous, key=lambda s: s.seen)[: len(anonymous) // 2 + 1]:
            del self._sessions[session.id]
