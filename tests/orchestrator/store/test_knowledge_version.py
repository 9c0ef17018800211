"""Every incident records the version of the agents' knowledge its triage was decided under, on
SQLite and Postgres; a database created before the `knowledge_version` column gets it when a
process opens it, and its incidents read back with no version."""

from __future__ import annotations

from sqlalchemy import text

from orchestrator.store import AuditAnchor, Store
from tests.orchestrator.store.store_factories import make_incident
from tools.models import Category, Severity, Verdict


async def test_the_triage_records_the_knowledge_version(store: Store) -> None:
    await store.ensure_incident(make_incident("inc-1"))

    triaged = await store.record_triage(
        "inc-1",
        Verdict.MALICIOUS,
        Severity.HIGH,
        Category.EXECUTION,
        0.9,
        "execution",
        knowledge_version="2031-01-02.3",
    )

    assert triaged.knowledge_version == "2031-01-02.3"
    found = await store.get_incident("inc-1")
    assert found is not None and found.knowledge_version == "2031-01-02.3"


async def test_a_database_from_before_the_knowledge_version_column_gets_it(
    db_url: str, anchor: AuditAnchor
) -> None:
    store = await Store.open(db_url, anchor=anchor)
    async with store.engine.begin() as conn:
        await conn.execute(text("DELETE FROM incidents"))
        await conn.execute(text("ALTER TABLE incidents DROP COLUMN knowledge_version"))
    await store.close()

    reopened = await Store.open(db_url, anchor=anchor)
    try:
        await reopened.ensure_incident(make_incident("inc-1"))
        before = await reopened.get_incident("inc-1")
        triaged = await reopened.record_triage(
            "inc-1", Verdict.BENIGN, Severity.LOW, Category.BENIGN_ACTIVITY, 0.8, None,
            knowledge_version="2031-01-02.3",
        )  # fmt: skip
        assert before is not None and before.knowledge_version is None
        assert triaged.knowledge_version == "2031-01-02.3"
    finally:
        await reopened.close()
