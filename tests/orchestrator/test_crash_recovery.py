"""A real `garrison worker` process killed with SIGKILL in the middle of a side effect: the vendor
(twins journaling to a file shared by processes, as a real vendor keeps its state) applied the
change and never answered. A new worker finishes the incident with exactly one effective change
and one ticket, through the ledger and check-then-act."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from temporalio.testing import TimeSkipper, TimeSkippingConfig, WorkflowEnvironment

from orchestrator.approvals.directory import ApproverDirectory
from orchestrator.approvals.service import ApprovalService
from orchestrator.composition import open_store
from orchestrator.models import ActivityProfile, IncidentWorkflowInput
from orchestrator.policy.model import load_policy
from orchestrator.settings import GarrisonSettings, TemporalSettings
from orchestrator.store.records import ActionStatus
from simulations.analyst import SimulatedAnalyst, directory_groups
from simulations.loader import load_all
from simulations.replay import ReplayContext, replay_incident
from simulations.spec import AnalystPolicy, AnalystSpec
from tools.journal import FileJournal

pytestmark = [pytest.mark.temporal, pytest.mark.slow]

INCIDENT = Path(__file__).parents[2] / "simulations" / "incidents" / "otrf-lsass-comsvcs-prd01"


def _spawn_worker(
    env: dict[str, str], journal_dir: Path, faults: str | None
) -> subprocess.Popen[bytes]:
    command = [
        sys.executable,
        "-m",
        "orchestrator.cli",
        "worker",
        "--incidents",
        str(INCIDENT),
        "--journal-dir",
        str(journal_dir),
    ]
    if faults:
        command += ["--faults", faults]
    return subprocess.Popen(command, env=env, start_new_session=True)


def _kill(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


@pytest.fixture
def world(temporal_env: WorkflowEnvironment, tmp_path: Path) -> Iterator[dict[str, object]]:
    prefix = f"crash-{uuid.uuid4().hex[:8]}"
    address = temporal_env.client.service_client.config.target_host
    env = {k: v for k, v in os.environ.items() if not k.startswith("GARRISON_")}
    env |= {
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


async def _wait_for(predicate, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return
        await asyncio.sleep(0.1)
    raise AssertionError("condition not reached in time")


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
    prefix = settings.temporal.task_queue_prefix
    store = await open_store(settings)
    directory = ApproverDirectory(
        groups=directory_groups(
            {t.approver_group for t in policy.tiers.values()},
            {t.escalation_group for t in policy.tiers.values()},
        )
    )
    ctx = ReplayContext(
        client=temporal_env.client,
        skipper=TimeSkipper(temporal_env.client, config=TimeSkippingConfig(enabled=False)),
        store=store,
        approvals=ApprovalService(temporal_env.client, store, directory, settings.agent_identity),
        triage_queue=f"{prefix}-triage",
        timeout_s=150,
    )
    params = IncidentWorkflowInput(
        incident_id=incident_id,
        group_key=f"test:{incident_id}",
        title=loaded.spec.title,
        policy=policy,
        requester=settings.agent_identity,
        # A short attempt timeout so that the attempt lost with the killed worker is retried soon.
        activity=ActivityProfile(start_to_close_s=6, agent_start_to_close_s=60, max_attempts=10),
        task_queue_agents=f"{prefix}-agents",
        task_queue_actions=f"{prefix}-actions",
    )
    analyst = SimulatedAnalyst(
        spec=AnalystSpec(policy=AnalystPolicy.ORACLE, latency_s=60), truth=loaded.spec.truth
    )
    first = _spawn_worker(env, journal_dir, f"hang_after_apply={op}")
    second: subprocess.Popen[bytes] | None = None
    try:
        run = asyncio.create_task(replay_incident(ctx, loaded, incident_id, params, analyst))
        await _wait_for(lambda: any(c.op == op for c in journal.changes()), 90)
        _kill(first)
        second = _spawn_worker(env, journal_dir, None)
        outcome = await run
    finally:
        _kill(first)
        if second is not None:
            _kill(second)
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
        # The retry found the host already contained and recorded it as such, not as a failure.
        assert isolate.already_in_state
    assert (await store.verify_audit(store.anchor)).ok
    await store.close()
