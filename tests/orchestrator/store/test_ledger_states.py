"""The action ledger's terminal states and its attempt count, on SQLite and Postgres: an entry that
ends without success is `failed` or `abandoned`, never left `pending`; an ended entry keeps its end
against a late `ledger_end`; a retried entry is pending again; and a database created before the
`attempts` column gets it when a process opens it."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from orchestrator.store import ActionStatus, AuditAnchor, Store
from tests.orchestrator.store.store_factories import make_action_record


async def test_attempts_count_changes_sent_to_the_vendor(store: Store) -> None:
    record = make_action_record()
    assert (await store.ledger_begin(record)).attempts == 0

    await store.ledger_attempt(record.business_key)
    again = await store.ledger_begin(record)  # a retried activity finds the count

    assert again.attempts == 1
    assert again.status is ActionStatus.PENDING
    assert (await store.ledger_attempt(record.business_key)).attempts == 2


@pytest.mark.parametrize("status", [ActionStatus.FAILED, ActionStatus.ABANDONED])
async def test_a_pending_entry_ends_failed_or_abandoned(store: Store, status: ActionStatus) -> None:
    record = make_action_record()
    await store.ledger_begin(record)

    ended = await store.ledger_end(record.business_key, status, outcome="vendor refused: 403")

    assert ended is not None
    assert (ended.status, ended.outcome) == (status, "vendor refused: 403")
    assert ended.completed_at is not None
    assert [r.status for r in await store.actions_for("inc-1")] == [status]


async def test_an_entry_that_succeeded_keeps_its_end(store: Store) -> None:
    record = make_action_record()
    await store.ledger_begin(record)
    await store.ledger_finish(record.business_key, ActionStatus.SUCCEEDED, outcome="isolated")

    late = await store.ledger_end(record.business_key, ActionStatus.ABANDONED, outcome="gave up")

    assert late is not None
    assert (late.status, late.outcome) == (ActionStatus.SUCCEEDED, "isolated")


async def test_a_failed_entry_is_pending_again_when_it_is_retried(store: Store) -> None:
    record = make_action_record()
    await store.ledger_begin(record)
    await store.ledger_end(record.business_key, ActionStatus.FAILED, outcome="timed out")

    retried = await store.ledger_begin(record)

    assert retried.status is ActionStatus.PENDING
    assert retried.completed_at is None


async def test_ledger_end_of_an_unknown_entry_is_none_and_refuses_success(store: Store) -> None:
    assert await store.ledger_end("inc-9:isolate_host:x", ActionStatus.FAILED, outcome="-") is None
    with pytest.raises(ValueError, match="failed or abandoned"):
        await store.ledger_end("inc-9:isolate_host:x", ActionStatus.SUCCEEDED, outcome="-")


async def test_a_database_from_before_the_attempts_column_gets_it(
    db_url: str, anchor: AuditAnchor
) -> None:
    store = await Store.open(db_url, anchor=anchor)
    async with store.engine.begin() as conn:
        await conn.execute(text("DELETE FROM actions"))
        await conn.execute(text("ALTER TABLE actions DROP COLUMN attempts"))
    await store.close()

    reopened = await Store.open(db_url, anchor=anchor)
    try:
        record = make_action_record()
        await reopened.ledger_begin(record)
        assert (await reopened.ledger_attempt(record.business_key)).attempts == 1
    finally:
        await reopened.close()
