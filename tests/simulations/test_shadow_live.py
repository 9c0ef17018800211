"""`garrison shadow follow`: a candidate following a deployment replays each closed incident of
the deployment's database as `shadow--<id>`, with the live analysts' decisions mirrored, side
effects off, into a database of its own; `shadow report --live` pairs the two."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from orchestrator.composition import open_store
from orchestrator.settings import ConfigError, GarrisonSettings, TemporalSettings
from simulations.loader import load_all
from simulations.routing import RecordedBackends
from simulations.runner import SimulationOptions, run_simulation
from simulations.shadow.live import follow_once, live_database_url, live_report

pytestmark = [pytest.mark.temporal, pytest.mark.simulation]

ROOT = Path(__file__).parents[2]
INCIDENT = ROOT / "simulations" / "incidents" / "otrf-covenant-dcsync-ws5"
LIVE_ID = f"sim-live--{INCIDENT.name}"


def _settings(env: WorkflowEnvironment, data_dir: Path, **extra: object) -> GarrisonSettings:
    return GarrisonSettings(
        data_dir=data_dir,
        temporal=TemporalSettings(
            address=env.client.service_client.config.target_host,
            task_queue_prefix=f"live-{uuid.uuid4().hex[:8]}",
        ),
        **extra,  # type: ignore[arg-type]
    )


async def test_follow_shadows_closed_live_incidents_mirroring_decisions_without_effects(
    temporal_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    incidents = load_all([INCIDENT]).incidents
    live_settings = _settings(temporal_env, tmp_path / "live")
    # the deployment: the incident handled for real (on the twins), its analysts deciding
    live_card = await run_simulation(
        incidents, live_settings, SimulationOptions(run_id="live", dry_run=False)
    )
    live_executed = {(a.kind, a.target) for a in live_card.per_incident[0].executed_actions}
    assert live_executed, "the live incident executed nothing: nothing to mirror"

    shadow_settings = _settings(
        temporal_env,
        tmp_path / "shadow",
        shadow_live_database_url=live_settings.effective_database_url,
    )
    journal = tmp_path / "journal"
    backends = RecordedBackends(incidents, journal_dir=journal)
    (done,) = await follow_once(shadow_settings, backends)
    assert done.incident_id == f"shadow--{LIVE_ID}" and done.result is not None, done.error
    shadowed = {(e.action.kind, e.action.target) for e in done.result.executed}
    assert shadowed == live_executed  # the live analysts' approvals, mirrored
    # ... and decided only: the twins the shadow read from journaled no change of its own
    assert not any(journal.glob("shadow--*"))
    # ... on task queues no worker of the deployment serves
    described = await temporal_env.client.get_workflow_handle(
        f"incident-{done.incident_id}"
    ).describe()
    prefix = shadow_settings.temporal.task_queue_prefix
    assert described.task_queue == f"{prefix}-shadow-triage"

    assert await follow_once(shadow_settings, RecordedBackends(incidents)) == []  # once each

    store = await open_store(shadow_settings)
    try:
        report = await live_report(shadow_settings, store)
    finally:
        await store.close()
    assert report.totals.incidents == 1 and report.totals.agree == 1, report.incidents
    assert report.incidents[0].id == LIVE_ID


def test_follow_refuses_its_own_database_as_the_live_one(tmp_path: Path) -> None:
    settings = GarrisonSettings(data_dir=tmp_path)
    same = settings.model_copy(update={"shadow_live_database_url": settings.effective_database_url})
    with pytest.raises(ConfigError, match="this process's own database"):
        live_database_url(same)
    with pytest.raises(ConfigError, match="required"):
        live_database_url(settings)
