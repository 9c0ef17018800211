"""The default vendor of every capability (CrowdStrike, PAN-OS, Okta, Jira, VirusTotal) over
loopback HTTP against its emulator, on every recorded incident: the twins' verdicts and actions
(tests/simulations/emulated_check.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from tests.simulations.emulated_check import check_choice, choices

pytestmark = [pytest.mark.temporal, pytest.mark.simulation]


async def test_the_default_vendors_match_the_in_memory_twins(
    temporal_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    await check_choice(temporal_env, tmp_path, choices()[0])
