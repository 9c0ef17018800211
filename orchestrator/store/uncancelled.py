"""Store work that a cancellation does not cut in half.

A Temporal activity is cancelled when its workflow is terminated or cancelled, or when its
heartbeat is lost; the cancellation lands at whatever the activity awaits. Inside a transaction
that is a statement, a BEGIN or a COMMIT running on the driver's thread, which goes on after the
awaiting task gave up: a transaction begun that way and never ended keeps SQLite's one write lock
for as long as its connection lives, and every other writer (ingestion first) waits on it. So a
transaction runs in a task of its own, and a cancellation of its caller waits until it has
committed or rolled back (milliseconds: the store's transactions are short) before it goes on.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

T = TypeVar("T")


async def to_the_end(work: Awaitable[T]) -> T:
    """Await `work` in its own task; a cancellation of the caller is raised once it has ended."""
    task = asyncio.ensure_future(work)
    cancelled: asyncio.CancelledError | None = None
    while True:
        try:
            result = await asyncio.shield(task)
        except asyncio.CancelledError as error:
            if task.done():  # the work itself was cancelled, or it ended as the caller was
                raise cancelled or error from None
            cancelled = error
        except BaseException:
            if cancelled is not None:
                raise cancelled from None
            raise
        else:
            break
    if cancelled is not None:
        raise cancelled
    return result
