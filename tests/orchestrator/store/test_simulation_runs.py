"""Simulation runs kept in the store, on SQLite and Postgres: a scorecard reads back as written,
the list is newest first without the reports, keeping a run twice changes nothing, and a document
that is not a scorecard is refused."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from orchestrator.store import Store

T0 = datetime(2031, 3, 4, 5, 6, 7, tzinfo=UTC)


def scorecard(accuracy: float = 1.0) -> dict[str, Any]:
    return {
        "schema": "garrison.scorecard/1",
        "incidents": 1,
        "verdict_accuracy": accuracy,
        "containment_precision": 1.0,
        "containment_recall": 0.5,
        "over_response": 0,
        "unapproved_risky_actions": 0,
        "per_incident": [{"id": "inc-a", "verdict": "malicious", "executed_actions": []}],
        "breakdown": {"by_category": {"execution": {"incidents": 1}}},
    }


async def test_a_kept_run_reads_back_and_lists_newest_first(store: Store) -> None:
    runs = store.simulation_runs
    await runs.keep("run-old", T0, "simulations/incidents", scorecard(0.5))
    await runs.keep("run-new", T0 + timedelta(hours=1), "one <b>folder</b>", scorecard())
    await runs.keep("run-new", T0 + timedelta(hours=2), "again", scorecard(0.0))  # kept once

    listed = await runs.list()
    assert [r.id for r in listed] == ["run-new", "run-old"]
    assert listed[0].label == "one <b>folder</b>"
    assert listed[0].finished_at == T0 + timedelta(hours=1)
    assert listed[1].verdict_accuracy == 0.5 and listed[1].containment_recall == 0.5
    run = await runs.get("run-new")
    assert run is not None and run.report == scorecard()
    assert await runs.get("nope") is None


@pytest.mark.parametrize(
    "broken",
    [{"schema": "garrison.scorecard/9"}, scorecard() | {"verdict_accuracy": "high"}],
)
async def test_a_document_that_is_not_a_scorecard_is_refused(
    store: Store, broken: dict[str, Any]
) -> None:
    with pytest.raises(ValueError):
        await store.simulation_runs.keep("run-x", T0, "x", broken)
    assert await store.simulation_runs.list() == []


async def test_keeping_a_run_prunes_the_oldest_beyond_the_retention(store: Store) -> None:
    runs = store.simulation_runs
    for n in range(4):
        await runs.keep(f"run-{n}", T0 + timedelta(hours=n), "corpus", scorecard())
    await runs.keep("run-4", T0 + timedelta(hours=4), "corpus", scorecard(), retain=3)
    assert [r.id for r in await runs.list()] == ["run-4", "run-3", "run-2"]
    assert await runs.get("run-0") is None
    await runs.keep("run-5", T0 + timedelta(hours=5), "corpus", scorecard(), retain=1)
    assert [r.id for r in await runs.list()] == ["run-5"]
    with pytest.raises(ValueError, match="retain must be at least 1"):
        await runs.keep("run-6", T0, "corpus", scorecard(), retain=0)
