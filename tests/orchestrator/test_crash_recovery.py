"""A real `garrison worker` process killed with SIGKILL in the middle of a side effect: the vendor
(twins journaling to a file shared by processes, as a real vendor keeps its state) applied the
change and never answered. A new worker finishes the incident with exactly one effective change
and one ticket, through the ledger and check-then-act."""

from __future__ import annotations

import asyncio
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from orchestrator.composition import open_store
from orchestrator.models import ActivityProfile
from orchestrator.policy.model import load_policy
from orchestrator.settings import GarrisonSettings, TemporalSettings
from orchestrator.store.records import ActionStatus
from simulations.analyst import SimulatedAnalyst
from simulations.loader import load_all
from simulations.replay import replay_incident
from simulations.runner import replay_context, workflow_input
from simulations.spec import AnalystPolicy, AnalystSpec
from tests.orchestrator.history_check import replay_failure
from tests.orchestrator.processes import clean_environment, kill_group, spawn_garrison, wait_for
from tools.journal import FileJournal

pytestmark = [pytest.mark.temporal, pytest.mark.slow]

INCIDENT = Path(__file__).parents[2] / "simulations" / "incidents" / "otrf-lsass-comsvcs-prd01"


def _spawn_worker(
    env: dict[str, str], journal_dir: Path, faults: str | None
) -> subprocess.Popen[bytes]:
    args = ["worker", "--incidents", str(INCIDENT), "--journal-dir", str(journal_dir)]
    return spawn_garrison(*args, *(["--faults", faults] if faults else []), env=env)


@pytest.fixture
def world(temporal_env: WorkflowEnvironment, tmp_path: Path) -> Iterator[dict[str, object]]:
    prefix = f"crash-{uuid.uuid4().hex[:8]}"
    address = temporal_env.client.service_client.config.target_host
    env = clean_environment() | {
        "GARRISON_DATA_DIR": str(tmp_path / "data"),
        "GARRISON_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'garrison.db'}",
        "GARRISON_TEMPORAL_ADDRESS": address,
        "GARRISON_TEMPORAL_TASK_QUEUE_PREFIX": prefix,
    }
    settings = GarrisonSettings(
        data_dir=tmp_path / "data",
        database_url=env["GARRISON_DATABASE_URL"],
        temporal=TemporalSettings(address=address, task_queue_prefix=prefix),
    )
    yield {"env": env, "settings": settings, "journal_dir": tmp_path / "journal"}


@pytest.mark.parametrize("op", ["isolate_host", "open_ticket"])
async def test_worker_killed_after_the_vendor_applied_leaves_one_change_and_one_ticket(
    temporal_env: WorkflowEnvironment, world: dict[str, object], op: str
) -> None:
    env: dict[str, str] = world["env"]  # type: ignore[assignment]
    settings: GarrisonSettings = world["settings"]  # type: ignore[assignment]
    journal_dir: Path = world["journal_dir"]  # type: ignore[assignment]
    loaded = load_all([INCIDENT]).incidents[0]
    policy = load_policy(None)
    incident_id = f"crash-{uuid.uuid4().hex[:6]}--{loaded.spec.id}"
    journal = FileJournal(journal_dir / f"{incident_id}.jsonl")
    store = await open_store(settings)
    ctx = replay_context(temporal_env.client, store, settings, policy, timeout_s=150)
    # Short attempt and heartbeat timeouts (production heartbeats every kind too): an attempt lost
    # with the killed worker, an agent's included, is retried within seconds.
    params = workflow_input(
        settings,
        policy,
        incident_id,
        loaded.spec.title,
        ActivityProfile(
            start_to_close_s=6, agent_start_to_close_s=60, max_attempts=10, heartbeat_s=4
        ),
    )
    analyst = SimulatedAnalyst(
        spec=AnalystSpec(policy=AnalystPolicy.ORACLE, latency_s=60), truth=loaded.spec.truth
    )
    first = _spawn_worker(env, journal_dir, f"hang_after_apply={op}")
    second: subprocess.Popen[bytes] | None = None
    try:
        run = asyncio.create_task(replay_incident(ctx, loaded, incident_id, params, analyst))
        await wait_for(lambda: any(c.op == op for c in journal.changes()), 90)
        kill_group(first)
        second = _spawn_worker(env, journal_dir, None)
        outcome = await run
        # The killed worker's history, replayed as the next worker does: deterministic.
        failure = await replay_failure(temporal_env.client, incident_id)
    finally:
        kill_group(first)
        if second is not None:
            kill_group(second)
    assert failure is None, f"{outcome.error}\n{failure}"
    assert outcome.error is None, outcome.error
    assert outcome.result is not None
    changes = journal.changes()
    isolations = [c for c in changes if c.op == "isolate_host" and c.target.upper() == "PRD01"]
    assert len(isolations) == 1
    assert len([c for c in changes if c.op == "open_ticket"]) == 1
    assert len([c for c in changes if c.op == "close_ticket"]) == 1
    ledger = {a.business_key: a for a in await store.actions_for(incident_id)}
    isolate = ledger[f"{incident_id}:isolate_host:prd01"]
    assert isolate.status is ActionStatus.SUCCEEDED and isolate.verified
    if op == "isolate_host":
        # The retry found the host contained by the change its killed attempt sent, and records
        # Garrison's containment (issue 11), not a state that was there before.
        assert not isolate.already_in_state and isolate.attempts == 1
    assert (await store.verify_audit(store.anchor)).ok
    await store.close()
