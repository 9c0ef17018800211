"""Heartbeats: how Temporal learns that the worker running an activity died within the activity's
heartbeat timeout (seconds), not its start-to-close timeout (minutes).

`heartbeating()` heartbeats every third of the running activity's heartbeat timeout while its body
awaits (a vendor's answer, a commit job, a whole LangGraph graph). `vendor_call` beats before and
after every adapter call and ticks while it waits; `LivenessInterceptor` (`liveness.py`), which
every Garrison worker installs, ticks around every activity, so the agents' graphs and their
vendor reads need no code of their own.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from contextvars import ContextVar

from temporalio import activity

BEATS_PER_TIMEOUT = 3  # a beat every third of the timeout: one lost or late beat is no death

_ticking: ContextVar[bool] = ContextVar("garrison_heartbeat_ticking", default=False)


def beat() -> None:
    """One heartbeat, when running in an activity (the SDK throttles them to what the server
    needs); a no-op elsewhere, so adapters' callers work outside Temporal too."""
    if activity.in_activity():
        activity.heartbeat()


def tick_interval() -> float | None:
    """Seconds between beats for the running activity; None outside an activity or without a
    heartbeat timeout (nobody would notice the beats)."""
    if not activity.in_activity():
        return None
    timeout = activity.info().heartbeat_timeout
    if not timeout:
        return None
    return timeout.total_seconds() / BEATS_PER_TIMEOUT


@asynccontextmanager
async def heartbeating() -> AsyncIterator[None]:
    """Beat in the background while the body awaits. Nested uses share the outer ticker."""
    interval = tick_interval()
    if interval is None or _ticking.get():
        yield
        return
    token = _ticking.set(True)
    ticker = asyncio.create_task(_tick(interval), name="garrison-heartbeat")
    try:
        yield
    finally:
        ticker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await ticker
        _ticking.reset(token)


async def _tick(interval: float) -> None:
    while True:
        await asyncio.sleep(interval)
        beat()
