"""The simulator sends a recording's alerts as a sender would: a batch that ingestion refuses with
backpressure (the store busy, Temporal behind) is sent again after the wait it asked for, and
only a refusal that lasts is an error. Found on CI: a busy SQLite store under two test processes
failed a Slack test's incident start instead of delaying it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import pytest

from orchestrator.ingest.normalised import Normalised
from orchestrator.ingest.sink import Accepted, Backpressure
from simulations import replay
from simulations.replay import ReplayContext


class BusyIngest:
    """Refuses the first `refusals` batches, then accepts."""

    def __init__(self, refusals: int) -> None:
        self.refusals = refusals
        self.calls = 0

    async def accept(self, items: Sequence[Normalised], *, scope: str | None = None) -> Accepted:
        self.calls += 1
        if self.calls <= self.refusals:
            raise Backpressure(1, "the store did not take the alerts (OperationalError)")
        return Accepted(alert_ids=["a-1"])


class Context:
    def __init__(self, ingest: BusyIngest) -> None:
        self.ingest = ingest


async def test_a_refused_batch_is_sent_again_after_the_wait(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(replay, "MAX_DELIVERY_WAIT_S", 0.01)
    ingest = BusyIngest(refusals=2)
    ctx = cast(ReplayContext, Context(ingest))
    accepted = await replay._accept(ctx, [], "scope")  # pyright: ignore[reportPrivateUsage]
    assert accepted.alert_ids == ["a-1"] and ingest.calls == 3


async def test_a_refusal_that_lasts_is_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(replay, "MAX_DELIVERY_WAIT_S", 0.01)
    ingest = BusyIngest(refusals=100)
    ctx = cast(ReplayContext, Context(ingest))
    with pytest.raises(Backpressure):
        await replay._accept(ctx, [], "scope")  # pyright: ignore[reportPrivateUsage]
    assert ingest.calls == replay.DELIVERY_ATTEMPTS
