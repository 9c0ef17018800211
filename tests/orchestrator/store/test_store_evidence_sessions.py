"""The kept records of the agents' claims and the console's sessions, on SQLite and Postgres:
a record is kept once per incident and read back by host and time window; a session written by
one store is read, touched, given messages and removed through another on the same database,
keyed only by the hash of its id, and expired and surplus anonymous sessions are purged."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from orchestrator.console.sessions import SessionRecord, SessionStore, id_hash
from orchestrator.store import Store
from orchestrator.store.evidence import KeptEvent

T0 = datetime(2031, 3, 4, 5, 6, 7, tzinfo=UTC)


def event(minutes: int, pid: int, host: str = "WS-1") -> KeptEvent:
    fields = (("image", f"C:\\p{pid}.exe"), ("cmd_line", "<b>x</b>"))
    return KeptEvent(
        host=host, time=T0 + timedelta(minutes=minutes), kind="process", pid=pid, fields=fields
    )


async def test_kept_records_are_kept_once_and_read_by_host_and_window(store: Store) -> None:
    kept = [event(0, 1), event(3, 2), event(9, 3), event(0, 4, host="ws-2")]
    assert await store.evidence.keep("inc-1", kept) == 4
    assert await store.evidence.keep("inc-1", kept[:2]) == 0  # a retried activity adds nothing
    assert await store.evidence.keep("inc-2", kept[:1]) == 1  # another incident keeps its own

    around = await store.evidence.around("inc-1", "ws-1", T0, timedelta(minutes=5))
    assert [(e.host, e.pid, e.time) for e in around] == [
        ("ws-1", 1, T0),
        ("ws-1", 2, T0 + timedelta(minutes=3)),
    ]
    assert around[0].fields == kept[0].fields
    assert await store.evidence.count("inc-1") == 4


async def test_a_large_batch_keeps_every_record_under_its_digest_once(store: Store) -> None:
    """One keep of more records than one INSERT statement carries (SQLAlchemy splits the
    executemany): every record is stored under its digest, the duplicates in the batch and the
    records kept before are not counted again."""
    kept = [event(n % 600, n) for n in range(2_500)]
    assert await store.evidence.keep("inc-1", kept[:10]) == 10
    assert await store.evidence.keep("inc-1", [*kept, *kept[:300]]) == 2_490
    assert await store.evidence.count("inc-1") == 2_500
    async with store.engine.connect() as connection:
        rows = await connection.execute(text("SELECT key FROM evidence_events"))
        keys = sorted(row.key for row in rows)
    assert keys == sorted(f"inc-1:{e.digest}" for e in kept)


async def test_sessions_are_shared_through_the_database(store: Store, db_url: str) -> None:
    other = await Store.open(db_url)
    try:
        now = [1_000.0]
        one = SessionStore(60, 300, store.console_sessions, clock=lambda: now[0])
        two = SessionStore(60, 300, other.console_sessions, clock=lambda: now[0])
        session = await one.start("alice")
        assert (await store.console_sessions.load(session.id)) is None  # stored by hash only
        assert (await store.console_sessions.load(id_hash(session.id))) is not None

        now[0] += 50
        seen = await two.get(session.id)
        assert seen is not None and (seen.user, seen.csrf) == ("alice", session.csrf)
        seen.flash.append(("accepted", "approve: recorded"))
        await two.save(seen)
        now[0] += 50  # idle 50 s since the other replica saw it: alive
        again = await one.get(session.id)
        assert again is not None and again.flash == [("accepted", "approve: recorded")]

        await one.end(session.id)
        assert await two.get(session.id) is None
    finally:
        await other.close()


async def test_expired_and_surplus_anonymous_sessions_are_purged(store: Store) -> None:
    records = store.console_sessions
    for n, (user, started) in enumerate([("alice", 0.0), (None, 10.0), (None, 20.0), (None, 30.0)]):
        await records.add(SessionRecord(f"h{n}", "c", user, started, started + 100.0))
    await records.add(SessionRecord("old", "c", "bob", 0.0, 1.0))
    await records.purge(idle_before=50.0, started_before=-1.0, max_anonymous=2)
    left = {k for k in ("h0", "h1", "h2", "h3", "old") if await records.load(k) is not None}
    assert left == {"h0", "h3"}  # bob idle too long; the oldest anonymous half dropped
