"""`garrison simulate --backends emulated --fault ...` on the real pipeline (real Temporal, real
vendor adapters over loopback HTTP): the faults reach the incident's vendors, as their ledgers
show, and the report says which faults the run was under."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from orchestrator.settings import GarrisonSettings, TemporalSettings
from simulations.faults import parse_fault
from simulations.loader import load_all
from simulations.runner import SimulationOptions, run_simulation
from tools.vendors import DEFAULT_EMULATED, vendor

pytestmark = [pytest.mark.temporal, pytest.mark.simulation]

INCIDENT = Path(__file__).parents[2] / "simulations" / "incidents" / "otrf-covenant-dcsync-ws5"


async def test_faults_reach_the_vendors_and_the_report(
    temporal_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    settings = GarrisonSettings(
        data_dir=tmp_path,
        temporal=TemporalSettings(
            address=temporal_env.client.service_client.config.target_host,
            task_queue_prefix=f"fault-{uuid.uuid4().hex[:8]}",
        ),
    )
    texts = ["edr=5xx:6", "ticketing=reset_after_apply:create_issue"]
    card = await run_simulation(
        load_all([INCIDENT]).incidents,
        settings,
        SimulationOptions(
            emulated={c: vendor(name) for c, name in DEFAULT_EMULATED.items()},
            faults=tuple(parse_fault(text) for text in texts),
        ),
    )
    assert card.faults == texts
    [row] = card.per_incident
    assert row.verdict is not None, "the incident ran to the end"
    assert row.vendors is not None
    edr = row.vendors["edr"]
    assert edr.vendor == "crowdstrike"
    assert edr.answers["503"] == 6  # the six calls the fault failed, and no more
    assert edr.requests > 6  # the reads were retried past them
    jira = row.vendors["ticketing"]
    assert jira.answers.get("503", 0) == 0
    # The issue was created, its answer dropped; the retry found it rather than creating another.
    assert jira.answers["dropped"] == 1
    assert jira.changes["create_issue"] == 1
    assert jira.repeated_changes == 0
    assert row.ticket is not None
    assert (row.ticket.found, row.ticket.state, row.ticket.repeated_comments) == (True, "closed", 0)
    assert all(v.answers.get("503", 0) == 0 for c, v in row.vendors.items() if c != "edr")
