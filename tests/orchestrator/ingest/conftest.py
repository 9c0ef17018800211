"""The store fixtures of `tests/orchestrator/store/conftest.py` (a SQLite file and a throwaway
PostgreSQL database per test), for ingestion's tests on the real store."""

from tests.orchestrator.store.conftest import anchor, db_url, postgres_url, store

__all__ = ["anchor", "db_url", "postgres_url", "store"]
