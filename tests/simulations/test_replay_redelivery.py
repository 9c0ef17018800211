"""`garrison incidents replay --id`: a recording's alerts redelivered to an existing incident go
through ingestion like any sender's, against real workers on the real Temporal and the real
store: an exact re-send is deduplicated alert by alert, `--new-uids` adds new alerts to the same
incident (its workflow takes them in; no second incident, no second workflow), and nothing else
mints an id."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from temporalio.client import WorkflowHandle
from temporalio.testing import TimeSkipper, TimeSkippingConfig, WorkflowEnvironment

from orchestrator.approvals.notifier import LogNotifier
from orchestrator.backends import workflow_id
from orchestrator.composition import open_checkpointer, open_store
from orchestrator.models import IncidentPhase, IncidentResult, IncidentStatusView
from orchestrator.policy.model import load_policy
from orchestrator.settings import GarrisonSettings, TemporalSettings
from orchestrator.worker import WorkerDeps, build_workers
from orchestrator.workflows.incident import IncidentWorkflow
from simulations.loader import load_all
from simulations.routing import RecordedBackends

pytestmark = [pytest.mark.temporal]

INCIDENT = Path(__file__).parents[2] / "simulations" / "incidents" / "otrf-lsass-procdump-acct01"


def _garrison(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("GARRISON_")}
    return subprocess.run(
        [sys.executable, "-m", "orchestrator.cli", *args],
        env=base | env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


async def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(_garrison, *args, env=env)


async def _waiting_for_a_human(handle: WorkflowHandle[IncidentWorkflow, IncidentResult]) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        status: IncidentStatusView = await handle.query(IncidentWorkflow.status)
        if status.pending_approvals:
            return
        await asyncio.sleep(0.1)
    raise AssertionError("the incident never asked for an approval")


async def _expire_everything(
    env: WorkflowEnvironment, handle: WorkflowHandle[IncidentWorkflow, IncidentResult]
) -> IncidentResult:
    """Nobody answers: every request expires, in the workflow's virtual time."""
    skipper = TimeSkipper(env.client, config=TimeSkippingConfig(enabled=False))
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        status: IncidentStatusView = await handle.query(IncidentWorkflow.status)
        if status.phase is IncidentPhase.CLOSED:
            return await handle.result()
        for pending in status.pending_approvals:
            gap = pending.expires_at - await skipper.get_current_time(handle)
            if gap.total_seconds() > 0:
                await skipper.fast_forward(handle, gap + timedelta(seconds=1))
        await asyncio.sleep(0.1)
    raise AssertionError("the incident did not finish")


async def test_replay_id_redelivers_to_the_existing_incident(
    temporal_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    address = temporal_env.client.service_client.config.target_host
    settings = GarrisonSettings(
        data_dir=tmp_path / "data",
        temporal=TemporalSettings(address=address, task_queue_prefix=f"rid-{uuid.uuid4().hex[:8]}"),
    )
    # Strict enough that the incident waits for a human, so it is open when alerts come again.
    policy = load_policy(None).model_copy(update={"threshold": 10, "version": "test-strict"})
    (tmp_path / "policy.yaml").write_text(
        yaml.safe_dump(policy.model_dump(mode="json")), encoding="utf-8"
    )
    env = {
        "GARRISON_DATA_DIR": str(settings.data_dir),
        "GARRISON_TEMPORAL_ADDRESS": address,
        "GARRISON_TEMPORAL_TASK_QUEUE_PREFIX": settings.temporal.task_queue_prefix,
        "GARRISON_POLICY_FILE": str(tmp_path / "policy.yaml"),
    }
    loaded = load_all([INCIDENT]).incidents
    recorded = len(loaded[0].spec.alerts)
    store = await open_store(settings)
    try:
        async with open_checkpointer(settings) as checkpointer:
            deps = WorkerDeps(store, RecordedBackends(loaded), checkpointer, LogNotifier())
            workers = build_workers(temporal_env.client, settings.temporal, deps)
            async with workers[0], workers[1], workers[2]:
                started = await _cli("incidents", "replay", str(INCIDENT), env=env)
                assert started.returncode == 0, started.stderr
                incident_id = started.stdout.split("started ", 1)[1].split()[0]
                handle = temporal_env.client.get_workflow_handle_for(
                    IncidentWorkflow.run, workflow_id(incident_id)
                )
                await _waiting_for_a_human(handle)

                again = await _cli(
                    "incidents", "replay", str(INCIDENT), "--id", incident_id, env=env
                )
                assert again.returncode == 0, again.stderr
                assert f"to {incident_id}: 0 new, {recorded} duplicate(s)" in again.stdout
                assert len(await store.alerts_for(incident_id)) == recorded

                fresh = await _cli(
                    "incidents", "replay", str(INCIDENT), "--id", incident_id, "--new-uids",
                    env=env,
                )  # fmt: skip
                assert fresh.returncode == 0, fresh.stderr
                assert f"to {incident_id}: {recorded} new, 0 duplicate(s)" in fresh.stdout
                assert len(await store.alerts_for(incident_id)) == 2 * recorded

                result = await _expire_everything(temporal_env, handle)
                assert result.incident_id == incident_id
        audit = await store.audit_entries(incident_id=incident_id)
        incidents = await store.list_incidents()
    finally:
        await store.close()
    # The incident's own workflow took the new alerts in: one `alert.joined` each.
    joined = [e for e in audit if e.type == "alert.joined"]
    assert len({e.target for e in joined}) == recorded
    # Nothing minted another incident: the store has the one the first replay opened.
    assert [i.id for i in incidents] == [incident_id]


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--id", "live-nope--otrf-lsass-procdump-acct01"], "no such incident in the store"),
        (["--new-uids"], "--new-uids needs --id"),
    ],
)
def test_replay_id_refuses_what_it_cannot_do_in_one_line(
    tmp_path: Path, args: list[str], needle: str
) -> None:
    env = {
        "GARRISON_DATA_DIR": str(tmp_path),
        # A Temporal address nothing listens on: the refusals come before any connection.
        "GARRISON_TEMPORAL_ADDRESS": "127.0.0.1:1",
    }
    result = _garrison("incidents", "replay", str(INCIDENT), *args, env=env)
    assert result.returncode == 2
    assert needle in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
