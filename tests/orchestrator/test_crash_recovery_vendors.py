"""The production path under a crash: a real `garrison worker` process using the vendor adapters
(CrowdStrike, PAN-OS, Okta, Jira) over loopback HTTP to their emulators is SIGKILLed while the
vendor holds a change it applied and never answered; a new worker finishes the incident. One
effective containment, one ticket. A vendor that drops the connection after applying is covered
too: the retry confirms the state instead of acting again."""

from __future__ import annotations

import asyncio
import subprocess
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from orchestrator.composition import open_store
from orchestrator.models import ActivityProfile, ExecutedActionView, IncidentResult
from orchestrator.policy.model import load_policy
from orchestrator.settings import GarrisonSettings, TemporalSettings
from simulations.analyst import SimulatedAnalyst
from simulations.loader import LoadedIncident, load_all
from simulations.replay import replay_incident
from simulations.runner import replay_context, workflow_input
from simulations.spec import AnalystPolicy, AnalystSpec
from tests.orchestrator.history_check import replay_failure
from tests.orchestrator.processes import clean_environment, kill_group, spawn_garrison, wait_for
from tools.emulators.base import EmulatorFaults, EmulatorState
from tools.emulators.serve import serve
from tools.vendor_settings import env_assignments
from tools.vendors import vendor

pytestmark = [pytest.mark.temporal, pytest.mark.slow]

INCIDENT = Path(__file__).parents[2] / "simulations" / "incidents" / "otrf-lsass-comsvcs-prd01"
VENDORS = ("crowdstrike", "panos", "okta", "jira")


@asynccontextmanager
async def emulated_vendors(
    loaded: LoadedIncident, faults: dict[str, EmulatorFaults]
) -> AsyncIterator[tuple[dict[str, str], dict[str, EmulatorState]]]:
    """Serve the four emulators seeded from the incident; yield the worker's environment."""
    env: dict[str, str] = {}
    states: dict[str, EmulatorState] = {}
    events = list(loaded.telemetry())
    async with AsyncExitStack() as stack:
        for name in VENDORS:
            spec = vendor(name)
            states[name] = EmulatorState(faults=faults.get(name, EmulatorFaults()))
            app = spec.emulator(loaded.spec.environment, events, states[name])
            base_url = await stack.enter_async_context(serve(app))
            env |= env_assignments(spec.emulator_settings(base_url))
        yield env, states


def _applied(state: EmulatorState) -> bool:
    """The vendor applied a change (the ledger only records requests once answered)."""
    return state.state_changes > 0


def _edr_actions(result: IncidentResult) -> list[ExecutedActionView]:
    """The executed actions CrowdStrike carries out (the incident's service is removed too)."""
    return [e for e in result.executed if e.action.kind.value in EDR_KINDS]


EDR_KINDS = {"isolate_host", "kill_process", "quarantine_file", "remove_persistence"}


async def _jira_issue_count(base_url: str, env: dict[str, str]) -> int:
    auth = (env["GARRISON_JIRA_EMAIL"], env["GARRISON_JIRA_API_TOKEN"])
    async with httpx.AsyncClient(base_url=base_url, auth=auth) as client:
        answer = await client.get(
            "/rest/api/3/search/jql", params={"jql": 'project = "SEC"', "maxResults": 100}
        )
        answer.raise_for_status()
        return len(answer.json()["issues"])


@pytest.mark.parametrize(
    ("vendor_name", "op"), [("crowdstrike", "contain"), ("jira", "create_issue")]
)
async def test_worker_killed_while_the_vendor_holds_an_applied_change(
    temporal_env: WorkflowEnvironment, tmp_path: Path, vendor_name: str, op: str
) -> None:
    loaded = load_all([INCIDENT]).incidents[0]
    hang = {vendor_name: EmulatorFaults(hang_after_apply={op})}
    async with emulated_vendors(loaded, hang) as (vendor_env, states):
        outcome, settings = await _run_with_crash(
            temporal_env, tmp_path, loaded, vendor_env, lambda: _applied(states[vendor_name])
        )
        issues = await _jira_issue_count(vendor_env["GARRISON_JIRA_BASE_URL"], vendor_env)
    assert outcome.error is None, outcome.error
    assert outcome.result is not None
    isolations = [e for e in outcome.result.executed if e.action.kind.value == "isolate_host"]
    assert [e.action.target.upper() for e in isolations] == ["PRD01"]
    # each EDR action executed changed the vendor once (one containment), whatever the retries
    assert states["crowdstrike"].state_changes == len(_edr_actions(outcome.result))
    assert issues == 1
    store = await open_store(settings)
    try:
        assert (await store.verify_audit(store.anchor)).ok
    finally:
        await store.close()


async def test_connection_dropped_after_containment_is_confirmed_not_repeated(
    temporal_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    loaded = load_all([INCIDENT]).incidents[0]
    drop = {"crowdstrike": EmulatorFaults(reset_after_apply={"contain"})}
    async with emulated_vendors(loaded, drop) as (vendor_env, states):
        drop_once = states["crowdstrike"]

        def dropped() -> bool:
            if _applied(drop_once):
                drop_once.faults.reset_after_apply = set()  # the vendor recovers
                return True
            return False

        outcome, _ = await _run_with_crash(
            temporal_env, tmp_path, loaded, vendor_env, dropped, kill=False
        )
    assert outcome.result is not None, outcome.error
    assert [e.action.kind.value for e in _edr_actions(outcome.result)].count("isolate_host") == 1
    assert states["crowdstrike"].state_changes == len(_edr_actions(outcome.result))
    contains = [e for e in drop_once.ledger if e.path.endswith("devices-actions/v2")]
    assert len(contains) <= 2


async def _run_with_crash(
    env: WorkflowEnvironment,
    tmp_path: Path,
    loaded: LoadedIncident,
    vendor_env: dict[str, str],
    applied,
    *,
    kill: bool = True,
):
    prefix = f"vcrash-{uuid.uuid4().hex[:8]}"
    address = env.client.service_client.config.target_host
    inventory = tmp_path / "inventory.json"
    inventory.write_text(loaded.spec.environment.model_dump_json(), encoding="utf-8")
    worker_env = (
        clean_environment()
        | vendor_env
        | {
            "GARRISON_DATA_DIR": str(tmp_path / "data"),
            "GARRISON_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'garrison.db'}",
            "GARRISON_TEMPORAL_ADDRESS": address,
            "GARRISON_TEMPORAL_TASK_QUEUE_PREFIX": prefix,
            "GARRISON_INVENTORY_FILE": str(inventory),
        }
    )
    settings = GarrisonSettings(
        data_dir=tmp_path / "data",
        database_url=worker_env["GARRISON_DATABASE_URL"],
        temporal=TemporalSettings(address=address, task_queue_prefix=prefix),
    )
    policy = load_policy(None)
    store = await open_store(settings)
    ctx = replay_context(env.client, store, settings, policy, timeout_s=150)
    incident_id = f"vcrash-{uuid.uuid4().hex[:6]}--{loaded.spec.id}"
    params = workflow_input(
        settings,
        policy,
        incident_id,
        loaded.spec.title,
        ActivityProfile(
            start_to_close_s=8, agent_start_to_close_s=60, max_attempts=10, heartbeat_s=4
        ),
    )
    analyst = SimulatedAnalyst(
        spec=AnalystSpec(policy=AnalystPolicy.ORACLE, latency_s=60), truth=loaded.spec.truth
    )
    first = spawn_garrison("worker", env=worker_env)
    second: subprocess.Popen[bytes] | None = None
    try:
        run = asyncio.create_task(replay_incident(ctx, loaded, incident_id, params, analyst))
        await wait_for(applied, 90)
        if kill:
            kill_group(first)
            second = spawn_garrison("worker", env=worker_env)
        outcome = await run
        # The killed worker's history, replayed as the next worker does: deterministic.
        failure = await replay_failure(env.client, incident_id)
        assert failure is None, f"{outcome.error}\n{failure}"
    finally:
        kill_group(first)
        if second is not None:
            kill_group(second)
        await store.close()
    return outcome, settings
