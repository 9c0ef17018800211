"""A simulation whose agents and actions roles run in a second process
(`simulations/role_process.py`): the process that dies mid-run ends the run at once with an error
that says so, and a run of a few incidents stays in one process. (That the second process gives
the same results is the CI subset's baseline test, `test_corpus_simulation.py`.)"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from orchestrator.settings import ConfigError, GarrisonSettings, TemporalSettings
from simulations import runner
from simulations.loader import load_all
from simulations.role_process import RoleProcess, RoleProcessDied, RoleProcessSpec
from simulations.runner import SPLIT_FROM, SimulationOptions, run_simulation
from tests.simulations.test_corpus_simulation import subset_paths

pytestmark = [pytest.mark.temporal, pytest.mark.simulation]


def _settings(env: WorkflowEnvironment, tmp_path: Path) -> GarrisonSettings:
    return GarrisonSettings(
        data_dir=tmp_path,
        temporal=TemporalSettings(
            address=env.client.service_client.config.target_host,
            task_queue_prefix=f"sim-{uuid.uuid4().hex[:8]}",
        ),
    )


async def test_a_second_process_that_dies_ends_the_run_with_an_error_naming_it(
    temporal_env: WorkflowEnvironment, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[RoleProcess] = []
    real = runner.role_process

    @asynccontextmanager
    async def watched(spec: RoleProcessSpec) -> AsyncIterator[RoleProcess]:
        async with real(spec) as process:
            started.append(process)
            yield process

    monkeypatch.setattr(runner, "role_process", watched)
    incidents = load_all(subset_paths()).incidents[:3]

    def kill_after_the_first(_outcome: object) -> None:
        if started and started[0].process.returncode is None:
            started[0].process.kill()

    options = SimulationOptions(processes=2, concurrency=1, incident_timeout_s=300)
    began = time.monotonic()
    with pytest.raises(RoleProcessDied, match="agents and actions process exited with code -9"):
        await run_simulation(
            incidents, _settings(temporal_env, tmp_path), options, progress=kill_after_the_first
        )
    # At once, not after the next incident's timeout (300 s).
    assert time.monotonic() - began < 120
    assert len(started) == 1 and started[0].process.returncode == -9


def test_a_run_of_a_few_incidents_or_with_emulated_vendors_stays_in_one_process() -> None:
    assert runner._split(SimulationOptions(), SPLIT_FROM) is True
    assert runner._split(SimulationOptions(), SPLIT_FROM - 1) is False
    assert runner._split(SimulationOptions(emulated={}), 100) is False
    assert runner._split(SimulationOptions(processes=1), 100) is False
    assert runner._split(SimulationOptions(processes=2), 1) is True
    with pytest.raises(ConfigError, match="only the in-memory twins"):
        runner._split(SimulationOptions(processes=2, emulated={}), 100)
    with pytest.raises(ConfigError, match="1 or 2"):
        runner._split(SimulationOptions(processes=3), 100)
