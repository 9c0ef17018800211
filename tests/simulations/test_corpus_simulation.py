"""The CI subset of the committed corpus (`simulations/ci-subset.txt`) replayed end to end through
the real pipeline (workflows on the Temporal dev server, the agents, the policy gate, the in-memory
twins), with each analyst policy: it meets the quality bar and matches its saved baseline
(`simulations/baselines/ci-subset.json`) incident by incident; the histories the run leaves replay
without a non-determinism error. The whole corpus is gated by `.ci/run` through the CLI."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer

from orchestrator.policy.model import load_policy
from orchestrator.settings import GarrisonSettings, TemporalSettings
from orchestrator.temporal.converter import DATA_CONVERTER
from orchestrator.workflows.incident import IncidentWorkflow
from orchestrator.workflows.rollback import RollbackWorkflow
from simulations.baseline import compare, load_baseline
from simulations.loader import load_all
from simulations.runner import SimulationOptions, run_simulation
from simulations.scorer import Scorecard
from simulations.spec import AnalystPolicy

pytestmark = [pytest.mark.temporal, pytest.mark.simulation]

ROOT = Path(__file__).parents[2]
CORPUS = ROOT / "simulations" / "incidents"
SUBSET = ROOT / "simulations" / "ci-subset.txt"
BASELINE = ROOT / "simulations" / "baselines" / "ci-subset.json"


def subset_paths() -> list[Path]:
    lines = SUBSET.read_text(encoding="utf-8").splitlines()
    return [CORPUS / line.strip() for line in lines if line.strip() and not line.startswith("#")]


def _settings(env: WorkflowEnvironment, tmp_path: Path) -> GarrisonSettings:
    return GarrisonSettings(
        data_dir=tmp_path,
        temporal=TemporalSettings(
            address=env.client.service_client.config.target_host,
            task_queue_prefix=f"sim-{uuid.uuid4().hex[:8]}",
        ),
    )


async def _simulate(
    env: WorkflowEnvironment, tmp_path: Path, analyst: AnalystPolicy | None
) -> Scorecard:
    loaded = load_all(subset_paths())
    assert loaded.problems == []
    return await run_simulation(
        loaded.incidents, _settings(env, tmp_path), SimulationOptions(analyst=analyst)
    )


def test_the_subset_names_committed_incidents_of_both_verdicts() -> None:
    loaded = load_all(subset_paths())
    assert loaded.problems == []
    assert len(loaded.incidents) == len(subset_paths()) >= 20
    verdicts = {i.spec.truth.verdict.value for i in loaded.incidents}
    assert verdicts == {"malicious", "benign"}


async def test_subset_with_the_oracle_analyst_meets_the_bar_and_its_baseline(
    temporal_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    card = await _simulate(temporal_env, tmp_path, None)
    assert card.incidents == len(subset_paths())
    assert card.unapproved_risky_actions == 0
    assert card.over_response == 0
    assert card.verdict_accuracy >= 0.9
    assert card.containment_recall >= 0.8
    assert card.containment_precision >= 0.9
    benign = [i for i in card.per_incident if i.expected_verdict == "benign"]
    assert len(benign) >= 3
    assert all(i.verdict == "benign" and not i.executed_actions for i in benign)
    report = json.loads(card.model_dump_json())
    assert compare(report, load_baseline(BASELINE)) == []


async def test_absent_analyst_lets_nothing_above_the_threshold_execute(
    temporal_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    threshold = load_policy(None).threshold
    card = await _simulate(temporal_env, tmp_path, AnalystPolicy.ABSENT)
    executed = [a for i in card.per_incident for a in i.executed_actions]
    assert all(a.risk <= threshold and not a.approved_by for a in executed)
    denied = [d for i in card.per_incident for d in i.denied_actions]
    expired = [d for d in denied if d.reason == "expired"]
    assert card.approvals_requested > 0
    assert len(expired) == card.approvals_requested
    assert card.unapproved_risky_actions == 0


async def test_simulated_histories_replay_without_nondeterminism(
    temporal_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    settings = _settings(temporal_env, tmp_path)
    loaded = load_all(subset_paths()).incidents[:4]
    await run_simulation(loaded, settings, SimulationOptions(analyst=AnalystPolicy.APPROVE_ALL))
    histories: list[WorkflowHistory] = []
    async for execution in temporal_env.client.list_workflows(
        f"TaskQueue = '{settings.temporal.task_queue_prefix}-triage'"
    ):
        handle = temporal_env.client.get_workflow_handle(execution.id, run_id=execution.run_id)
        histories.append(await handle.fetch_history())
    assert len(histories) == len(loaded)
    replayer = Replayer(
        workflows=[IncidentWorkflow, RollbackWorkflow], data_converter=DATA_CONVERTER
    )
    failures = []
    for history in histories:
        result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
        if result.replay_failure is not None:
            failures.append(f"{history.workflow_id}: {result.replay_failure}")
    assert failures == []


HISTORIES = Path(__file__).parents[1] / "histories"


def test_checked_in_histories_exist() -> None:
    assert len(sorted(HISTORIES.glob("*.json"))) >= 4


@pytest.mark.parametrize("path", sorted(HISTORIES.glob("*.json")), ids=lambda p: p.stem)
async def test_checked_in_history_replays(path: Path) -> None:
    text = await asyncio.to_thread(path.read_text, encoding="utf-8")
    history = WorkflowHistory.from_json(path.stem, text)
    replayer = Replayer(
        workflows=[IncidentWorkflow, RollbackWorkflow], data_converter=DATA_CONVERTER
    )
    await replayer.replay_workflow(history)
