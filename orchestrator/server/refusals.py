"""Refused requests in the audit log: each one counted, none able to fill the log.

Every refusal at the HTTP edge (a 4xx on `/api` or `/slack`, a body cut off by a client that went
away) is audited exactly once, but a flood is collapsed: per (refusal kind, client address) and
per window (a minute), the first refusal writes its own row and the rest of that window are only
counted. The count is written as one `http.refusals_collapsed` row when the window closes (a
timer), when the next refusal arrives after it closed, or when the server stops (`aclose`), so
that rows + collapsed counts == refusals answered. At most `max_sources` windows are tracked;
refusals of a new key beyond that share one overflow window, so memory stays bounded whatever
addresses an attacker uses.

A failure to write a row is logged and does not change the answer: a refusal stays a 4xx.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from orchestrator.store.records import AuditDetailValue, AuditEvent

log = logging.getLogger("garrison.server")

WINDOW_S = 60.0
MAX_SOURCES = 1_000
COLLAPSED = "http.refusals_collapsed"
OVERFLOW = ("overflow", "*")  # (kind, source) of refusals beyond `max_sources` tracked windows
MAX_TARGET = 256
MAX_OUTCOME = 500
CUT = "…[cut]"


def clip(text: str, limit: int) -> str:
    """A caller's text short enough for an audit field, marked when it was cut."""
    return text if len(text) <= limit else text[: limit - len(CUT)] + CUT


class AuditSink(Protocol):
    async def append_audit(self, event: AuditEvent) -> Any: ...


@dataclass(frozen=True)
class Refusal:
    """One refused request, as the edge saw it. `kind` names the refusal within its audit type
    (the status, or `client_disconnected`); `source` is the client's address."""

    type: str  # the audit type: `http.request_refused`, `slack.request_rejected`
    kind: str
    status: int
    source: str
    channel: str  # `api` or `slack`
    actor: str
    method: str
    path: str
    reason: str

    @property
    def key(self) -> tuple[str, str]:
        return (f"{self.type}:{self.kind}", self.source)

    def event(self) -> AuditEvent:
        detail: dict[str, AuditDetailValue] = {
            "status": self.status,
            "kind": self.kind,
            "method": clip(self.method, 16),
            "client": clip(self.source, 64),
        }
        return AuditEvent(
            type=self.type,
            actor=clip(self.actor, 128),
            target=clip(self.path, MAX_TARGET),
            outcome=clip(f"{self.status}: {self.reason}", MAX_OUTCOME),
            source=f"channel:{self.channel}",
            detail=detail,
        )


@dataclass
class _Window:
    opened: float  # the clock's time
    opened_at: datetime
    channel: str
    more: int = 0  # refusals after the first, not written yet


@dataclass
class RefusalAudit:
    """The audit of refusals, rate-limited per (kind, source) and window (see the module)."""

    store: AuditSink
    window_s: float = WINDOW_S
    max_sources: int = MAX_SOURCES
    clock: Callable[[], float] = time.monotonic
    _windows: dict[tuple[str, str], _Window] = field(default_factory=dict)
    _ticker: asyncio.Task[None] | None = None
    written: int = 0  # own rows written (figures for tests and benchmarks)
    collapsed: int = 0  # refusals counted in the summary rows written

    async def record(self, refusal: Refusal) -> None:
        """Audit one refusal: its own row when it opens a window, else a count for later."""
        now = self.clock()
        due = self._take_closed(now)
        key = refusal.key
        if key not in self._windows and len(self._windows) >= self.max_sources:
            key = OVERFLOW
        window = self._windows.get(key)
        if window is None:
            self._windows[key] = _Window(now, datetime.now(UTC), refusal.channel)
            self._start_ticker()
        else:
            window.more += 1
        await self._write_summaries(due)
        if window is None and await self._append(refusal.event()):
            self.written += 1

    async def flush(self) -> None:
        """Write the summaries of closed windows (the timer calls this)."""
        await self._write_summaries(self._take_closed(self.clock()))

    async def aclose(self) -> None:
        """Stop the timer and write every pending count, closed window or not (shutdown)."""
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
            self._ticker = None
        pending = list(self._windows.items())
        self._windows.clear()
        await self._write_summaries(pending)

    @property
    def tracked(self) -> int:
        return len(self._windows)

    def _take_closed(self, now: float) -> list[tuple[tuple[str, str], _Window]]:
        closed = [(k, w) for k, w in self._windows.items() if now - w.opened >= self.window_s]
        for key, _ in closed:
            del self._windows[key]
        return closed

    async def _write_summaries(self, windows: list[tuple[tuple[str, str], _Window]]) -> None:
        for (kind, source), window in windows:
            if window.more and await self._append(self._summary(kind, source, window)):
                self.collapsed += window.more

    def _summary(self, kind: str, source: str, window: _Window) -> AuditEvent:
        closed_at = datetime.now(UTC)
        return AuditEvent(
            type=COLLAPSED,
            actor="garrison",
            target=clip(source, MAX_TARGET),
            outcome=clip(
                f"{window.more} more refusals of {kind} from {source} in a window of"
                f" {self.window_s:g} s, each answered, audited here as one count",
                MAX_OUTCOME,
            ),
            source="channel:http" if (kind, source) == OVERFLOW else f"channel:{window.channel}",
            detail={
                "count": window.more,
                "kind": clip(kind, 128),
                "client": clip(source, 64),
                "window_s": self.window_s,
                "window_start": window.opened_at.isoformat(),
                "window_end": closed_at.isoformat(),
            },
        )

    async def _append(self, event: AuditEvent) -> bool:
        try:
            await self.store.append_audit(event)
        except Exception:  # the refusal is answered whether or not its row could be written
            log.exception("could not audit %s (%s)", event.type, event.outcome)
            return False
        return True

    def _start_ticker(self) -> None:
        if self._ticker is None or self._ticker.done():
            self._ticker = asyncio.get_running_loop().create_task(self._tick())

    async def _tick(self) -> None:
        """Write each window's count when it closes, until no window is open."""
        while self._windows:
            earliest = min(w.opened for w in self._windows.values())
            await asyncio.sleep(max(0.05, earliest + self.window_s - self.clock()))
            await self.flush()
