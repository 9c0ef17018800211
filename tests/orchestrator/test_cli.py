"""The `garrison` command as a user runs it (a real subprocess): malformed incidents and bad options
end with exit status 2 and a line naming the problem; approvals are decided from the CLI against a
running system with the same checks as every channel, and every attempt is audited."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio.testing import TimeSkipper, TimeSkippingConfig, WorkflowEnvironment

from orchestrator.approvals.notifier import LogNotifier
from orchestrator.composition import open_checkpointer, open_store
from orchestrator.models import IncidentStatusView, RollbackInput
from orchestrator.policy.model import load_policy
from orchestrator.settings import GarrisonSettings, TemporalSettings
from orchestrator.store.records import ActionStatus
from orchestrator.temporal.client import Role, task_queue
from orchestrator.worker import WorkerDeps, build_workers
from orchestrator.workflows.incident import IncidentWorkflow
from orchestrator.workflows.rollback import RollbackWorkflow
from simulations.loader import load_all
from simulations.replay import start_incident
from simulations.routing import RecordedBackends
from simulations.runner import replay_context, workflow_input
from tests.simulations.live_stack import free_port  # nothing listens there once released

ROOT = Path(__file__).parents[2]
INCIDENT = ROOT / "simulations" / "incidents" / "otrf-lsass-procdump-acct01"


def garrison(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("GARRISON_")}
    return subprocess.run(
        [sys.executable, "-m", "orchestrator.cli", *args],
        env=base | (env or {}),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_malformed_incidents_exit_2_naming_file_and_field(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    for name in ("bad-json", "wrong-schema", "unknown-kind"):
        shutil.copytree(INCIDENT, corpus / name)
    (corpus / "bad-json" / "incident.json").write_text("{not json", encoding="utf-8")
    for name, change in (
        ("wrong-schema", lambda d: d.update({"schema": "recorded-incident/9"})),
        ("unknown-kind", lambda d: d["truth"]["expected_actions"][0].update({"kind": "nuke"})),
    ):
        path = corpus / name / "incident.json"
        data = json.loads(path.read_text(encoding="utf-8"))
        data["id"] = name
        change(data)
        path.write_text(json.dumps(data), encoding="utf-8")

    result = garrison("simulate", str(corpus), env={"GARRISON_DATA_DIR": str(tmp_path / "d")})

    assert result.returncode == 2
    assert "Traceback" not in result.stderr + result.stdout
    lines = result.stderr.strip().splitlines()
    assert any("bad-json/incident.json" in line and "JSON" in line for line in lines)
    assert any("wrong-schema/incident.json" in line and "schema" in line for line in lines)
    assert any(
        "unknown-kind/incident.json" in line and "truth.expected_actions[0].kind" in line
        for line in lines
    )


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["simulate", "simulations/incidents", "--analyst", "sometimes"], "--analyst"),
        (["simulate", "simulations/incidents", "--fail-under", "speed=3"], "--fail-under"),
        (["simulate", "does/not/exist"], "does/not/exist"),
        (["worker", "--queues", "triage,lunch"], "--queues"),
    ],
)
def test_bad_options_exit_2_with_one_clear_line(args: list[str], needle: str) -> None:
    result = garrison(*args)
    assert result.returncode == 2
    assert needle in result.stderr
    assert "Traceback" not in result.stderr


def test_wrong_configuration_names_the_variable(tmp_path: Path) -> None:
    result = garrison(
        "incidents",
        "list",
        env={"GARRISON_DATA_DIR": str(tmp_path), "GARRISON_TEMPORAL_EMBEDDED_PORT": "seven"},
    )
    assert result.returncode == 2
    assert "GARRISON_TEMPORAL_EMBEDDED_PORT" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["worker", "--incidents", str(INCIDENT)],
        ["server", "--incidents", str(INCIDENT), "--port", str(free_port())],
    ],
    ids=["worker", "server"],
)
def test_an_unreachable_temporal_at_start_is_one_line_naming_the_address(
    args: list[str], tmp_path: Path
) -> None:
    address = f"127.0.0.1:{free_port()}"
    approvers = tmp_path / "approvers.yaml"
    approvers.write_text("groups: {soc-primary: [alice], soc-secondary: [bob]}\n")
    env = {
        "GARRISON_DATA_DIR": str(tmp_path / "data"),
        "GARRISON_TEMPORAL_ADDRESS": address,
        "GARRISON_APPROVERS_FILE": str(approvers),
    }
    result = garrison(*args, env=env)
    assert result.returncode == 2, result.stderr
    assert f"Temporal at {address}" in result.stderr and "unreachable" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


@pytest.mark.temporal
async def test_cli_approvals_on_a_running_system_apply_the_same_checks(
    temporal_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    prefix = f"cli-{uuid.uuid4().hex[:8]}"
    address = temporal_env.client.service_client.config.target_host
    settings = GarrisonSettings(
        data_dir=tmp_path / "data",
        temporal=TemporalSettings(address=address, task_queue_prefix=prefix),
    )
    approvers = tmp_path / "approvers.yaml"
    # The agents' identity is listed on purpose: membership must not let it approve.
    approvers.write_text(
        "groups:\n  soc-primary: [alice, bob, garrison-agent]\n  soc-secondary: [carol]\n",
        encoding="utf-8",
    )
    env = {
        "GARRISON_DATA_DIR": str(settings.data_dir),
        "GARRISON_TEMPORAL_ADDRESS": address,
        "GARRISON_APPROVERS_FILE": str(approvers),
    }
    # A stricter policy than the default, so that isolating a workstation needs a human.
    policy = load_policy(None).model_copy(update={"threshold": 10, "version": "test-strict"})
    loaded = load_all([INCIDENT]).incidents
    incident_id = f"cli-{uuid.uuid4().hex[:6]}--{loaded[0].spec.id}"
    store = await open_store(settings)
    backends = RecordedBackends(loaded)
    async with open_checkpointer(settings) as checkpointer:
        workers = build_workers(
            temporal_env.client,
            settings.temporal,
            WorkerDeps(store, backends, checkpointer, LogNotifier()),
        )
        async with workers[0], workers[1], workers[2]:
            handle = await _start(temporal_env, settings, store, loaded[0], incident_id, policy)
            approval_id = await _first_pending(handle)

            listed = await asyncio.to_thread(garrison, "approvals", "list", "--json", env=env)
            assert listed.returncode == 0, listed.stderr
            assert approval_id in [a["id"] for a in json.loads(listed.stdout)]

            for outsider in ("mallory", "garrison-agent"):
                refused = await asyncio.to_thread(
                    garrison, "approve", approval_id, "--as", outsider, env=env
                )
                assert refused.returncode == 1, refused.stderr
                assert "refused" in refused.stderr

            approved = await asyncio.to_thread(
                garrison, "approve", approval_id, "--as", "alice", env=env
            )
            assert approved.returncode == 0, approved.stderr
            late = await asyncio.to_thread(garrison, "deny", approval_id, "--as", "bob", env=env)
            assert late.returncode == 1 and "already decided" in late.stderr

            result = await _finish(temporal_env, handle)
            isolations = [e for e in result.executed if e.action.kind.value == "isolate_host"]
            assert isolations and isolations[0].approved_by == ["alice"]
            edr = backends.response_tools(incident_id).edr
            assert await edr.is_contained("ACCT01")

            # Compensation: the recorded inverses run newest first and the host is released.
            rollback = await temporal_env.client.execute_workflow(
                RollbackWorkflow.run,
                RollbackInput(
                    incident_id=incident_id,
                    requested_by="alice",
                    reason="test",
                    actions_queue=task_queue(settings.temporal, Role.ACTIONS),
                ),
                id=f"rollback-{incident_id}",
                task_queue=task_queue(settings.temporal, Role.TRIAGE),
            )
            assert "release_host" in [a.kind.value for a in rollback.reverted]
            assert not await edr.is_contained("ACCT01")

    audit = await store.audit_entries(incident_id=incident_id)
    refused = (
        "approval.decision_refused",
        "approval.denied_unauthorized",
        "approval.denied_self_approval",
    )
    refusals = [e for e in audit if e.type in refused]
    assert sorted(e.actor for e in refusals) == ["bob", "garrison-agent", "mallory"]
    assert any(e.type == "approval.decision_received" and e.actor == "alice" for e in audit)
    ledger = {a.action.kind.value: a for a in await store.actions_for(incident_id)}
    assert ledger["isolate_host"].status is ActionStatus.ROLLED_BACK
    assert (await store.verify_audit(store.anchor)).ok
    await store.close()


async def _start(env, settings, store, loaded, incident_id, policy):
    """Start the incident; nobody answers here but the CLI."""
    ctx = replay_context(env.client, store, settings, policy, timeout_s=60)
    params = workflow_input(settings, policy, incident_id, loaded.spec.title)
    return await start_incident(ctx, loaded, incident_id, params)


async def _first_pending(handle, kind: str = "isolate_host") -> str:
    """The request for a `kind` action (a round's requests are made together, in any order)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        status: IncidentStatusView = await handle.query(IncidentWorkflow.status)
        for pending in status.pending_approvals:
            if pending.action.kind.value == kind:
                return pending.approval_id
        await asyncio.sleep(0.1)
    raise AssertionError(f"no approval request for {kind}")


async def _finish(env, handle):
    """Answer nothing more: later requests expire by fast-forwarding the workflow's clock."""
    skipper = TimeSkipper(env.client, config=TimeSkippingConfig(enabled=False))
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        status: IncidentStatusView = await handle.query(IncidentWorkflow.status)
        if status.phase.value == "closed":
            return await handle.result()
        for pending in status.pending_approvals:
            gap = pending.expires_at - await skipper.get_current_time(handle)
            if gap.total_seconds() > 0:
                await skipper.fast_forward(handle, gap + timedelta(seconds=1))
        await asyncio.sleep(0.1)
    raise AssertionError("the incident did not finish")


async def test_listing_shows_attacker_text_literally_never_as_markup(tmp_path: Path) -> None:
    from orchestrator.store.repository import Store
    from tests.orchestrator.store.store_factories import make_approval
    from tools.actions import IsolateHost

    hostile = "[/bold]WS[link=https://evil.example]01[/link]"
    store = await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'garrison.db'}")
    await store.create_approval(
        make_approval().model_copy(update={"action": IsolateHost(target=hostile)})
    )
    await store.close()
    listed = await asyncio.to_thread(
        garrison, "approvals", "list", env={"GARRISON_DATA_DIR": str(tmp_path)}
    )
    assert listed.returncode == 0, listed.stderr
    assert hostile in listed.stdout
