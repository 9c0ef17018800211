"""The store's PostgreSQL fixture (`tests/orchestrator/store/conftest.py`: a throwaway database
per session, a skip without the server, a failure in CI), for the server's tests on both stores."""

from tests.orchestrator.store.conftest import postgres_url

__all__ = ["postgres_url"]
