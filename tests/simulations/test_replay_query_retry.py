"""The simulation driver asks again when a worker fails to answer its status query (a worker that
has just taken the workflow over answers by replaying its history), and fails the incident when
the query keeps failing."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, cast

import pytest
from temporalio.client import WorkflowQueryFailedError

import simulations.replay as replay
from orchestrator.models import IncidentPhase, IncidentStatusView

T0 = datetime(2031, 3, 4, 5, 6, 7, tzinfo=UTC)
CLOSED = IncidentStatusView(incident_id="inc-1", phase=IncidentPhase.CLOSED, started_at=T0)


class FlakyHandle:
    """Fails its first `failures` status queries, then answers that the incident closed."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.queries = 0

    async def query(self, _query: object) -> IncidentStatusView:
        self.queries += 1
        if self.queries <= self.failures:
            raise WorkflowQueryFailedError("[TMPRL1100] Nondeterminism error: replay diverged")
        return CLOSED

    async def result(self) -> str:
        return "the incident's result"


async def _drive(handle: FlakyHandle) -> object:
    return await replay._drive(cast(Any, None), cast(Any, handle), cast(Any, None))  # pyright: ignore[reportPrivateUsage]


async def test_a_failed_status_query_is_asked_again(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(replay, "QUERY_RETRY_S", 0.0)
    handle = FlakyHandle(failures=replay.QUERY_ATTEMPTS - 1)
    assert await _drive(handle) == "the incident's result"
    assert handle.queries == replay.QUERY_ATTEMPTS


async def test_a_query_that_keeps_failing_fails_the_driver(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(replay, "QUERY_RETRY_S", 0.0)
    handle = FlakyHandle(failures=replay.QUERY_ATTEMPTS)
    with pytest.raises(WorkflowQueryFailedError):
        await _drive(handle)
    assert handle.queries == replay.QUERY_ATTEMPTS
