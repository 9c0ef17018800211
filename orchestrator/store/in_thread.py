"""SQLite transactions run whole in one worker thread, each in one hop.

Through aiosqlite every statement of a transaction, its BEGIN and its COMMIT is a hop from the
event loop to the driver's thread and back, and SQLite's one write lock (taken at BEGIN IMMEDIATE)
stays held while the loop comes round to the next statement: on a busy worker, each hop waits
behind the loop's other work, so a short write held the lock for tens of milliseconds and every
other writer queued behind it. Here the same work runs on a synchronous connection in a thread,
from BEGIN to COMMIT, and the lock is held for as long as SQLite takes to run the statements.

The store's work functions are written against the async session (`AsyncSession.exec`,
`AsyncConnection.execute`...). `SyncSession` and `SyncConnection` offer that interface over a
synchronous session, with coroutines that complete without ever suspending, so `drive` runs a work
function to its end in the thread without an event loop. A work function that awaits anything
else (a sleep, a task) suspends, and `drive` refuses it with an error that says so.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, TypeVar, cast

from sqlalchemy import Connection
from sqlmodel import Session

from orchestrator.store.database import BEGIN_MODE, sync_engine_for

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
    from sqlmodel.ext.asyncio.session import AsyncSession

T = TypeVar("T")
# Threads running the store's transactions: SQLite runs one writer at a time and readers beside
# it (WAL); a few threads keep a reader from queueing behind a writer waiting for the lock.
THREADS = 4


class ThreadedSqlite:
    """The store's transactions on SQLite, each run whole in one of the store's threads."""

    def __init__(self, engine: AsyncEngine) -> None:
        sync = sync_engine_for(engine)  # transactions begin IMMEDIATE, as the writer's do
        self._writer = sync
        self._reader = sync.execution_options(**{BEGIN_MODE: "DEFERRED"})
        self._threads = ThreadPoolExecutor(THREADS, thread_name_prefix="garrison-store")

    def session(self, work: Callable[[AsyncSession], Awaitable[T]], write: bool) -> Awaitable[T]:
        def once() -> T:
            engine = self._writer if write else self._reader
            with Session(engine, expire_on_commit=False) as session, session.begin():
                return drive(work(cast("AsyncSession", SyncSession(session))))

        return self._in_thread(once)

    def connection(
        self, work: Callable[[AsyncConnection], Awaitable[T]], write: bool
    ) -> Awaitable[T]:
        def once() -> T:
            with (self._writer if write else self._reader).begin() as connection:
                return drive(work(cast("AsyncConnection", SyncConnection(connection))))

        return self._in_thread(once)

    def release_connections(self) -> None:
        """Close the pooled connections (the next transaction opens one)."""
        self._writer.dispose()

    def dispose(self) -> None:
        self._threads.shutdown(wait=True)
        self._writer.dispose()

    def _in_thread(self, once: Callable[[], T]) -> Awaitable[T]:
        return asyncio.get_running_loop().run_in_executor(self._threads, once)


class NotInThread(RuntimeError):
    """A store work function awaited something other than its session."""


def drive(coroutine: Awaitable[T]) -> T:
    """Run a coroutine that never suspends to its end, here, and return its result."""
    assert isinstance(coroutine, Coroutine)
    running = cast("Coroutine[Any, Any, T]", coroutine)
    try:
        running.send(None)
    except StopIteration as done:
        return done.value
    running.close()
    raise NotInThread(
        "a store transaction awaited something other than its session or connection: it cannot "
        "run in the store's thread"
    )


class SyncConnection:
    """The `AsyncConnection` methods the store's work functions use, over a synchronous
    connection (a work function calling another gets an AttributeError in the store's tests)."""

    def __init__(self, connection: Connection) -> None:
        self.sync_connection = connection

    async def execute(self, statement: Any, parameters: Any = None, **kwargs: Any) -> Any:
        return self.sync_connection.execute(statement, parameters, **kwargs)

    async def run_sync(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return function(self.sync_connection, *args, **kwargs)


class SyncSession:
    """The `AsyncSession` methods (sqlmodel's) the store's work functions use, over a synchronous
    session."""

    def __init__(self, session: Session) -> None:
        self.sync_session = session

    async def exec(self, statement: Any, **kwargs: Any) -> Any:
        return self.sync_session.exec(statement, **kwargs)

    def add(self, instance: object) -> None:
        self.sync_session.add(instance)

    async def flush(self) -> None:
        self.sync_session.flush()

    async def connection(self) -> SyncConnection:
        return SyncConnection(self.sync_session.connection())
