"""A simulation dispatches its own run's incidents only. A `garrison simulate` killed between an
alert's commit and its signal leaves that alert unsignalled in the data directory; the next run's
dispatcher read it, asked the run for the input of an incident it never registered, and died
with a KeyError before replaying anything."""

from __future__ import annotations

from pathlib import Path

from orchestrator.ingest.dispatch import Dispatcher
from orchestrator.ingest.pipeline import Ingestor
from orchestrator.models import IncidentWorkflowInput
from orchestrator.policy.model import IngestRules
from orchestrator.store.records import IncidentRecord
from orchestrator.store.repository import Store
from tests.orchestrator.store.test_store_intake import alert


def nobody_registered(incident: IncidentRecord) -> IncidentWorkflowInput:
    raise KeyError(incident.id)  # what the simulation's own input lookup does for a stranger


async def test_alerts_an_interrupted_run_left_unsignalled_are_not_this_runs(tmp_path: Path) -> None:
    store = await Store.open(f"sqlite:///{tmp_path / 'g.db'}")
    ingest = Ingestor(store, IngestRules())
    try:
        left = await ingest.accept([alert("a1", correlation="rec-1")], scope="sim-deadbeef")
        assert left.incidents == ["sim-deadbeef--rec-1"]
        # no Temporal client is needed: a dispatcher that touched the stranger would raise first
        dispatcher = Dispatcher(
            None,  # type: ignore[arg-type]
            store,
            nobody_registered,
            "nowhere-triage",
            incidents_prefix="sim-cafef00d--",
        )
        assert await dispatcher.dispatch_pending() == 0
        assert dispatcher.backlog == 0
        assert await store.intake.backlog("sim-cafef00d--") == 0
        # the earlier run's alert is still there, unsignalled, for anyone who owns it
        assert [r.alert_uid for r in await store.intake.unsignalled(10)] == ["a1"]
        assert await store.intake.backlog() == 1
    finally:
        await ingest.aclose()
        await store.close()
