"""V1: a schema-driven fuzz (Schemathesis, every phase and check, a recorded seed) of the HTTP API
served by a real server on loopback (`bench.fuzz_api`), bounded to run in well under a minute:
no response >= 500, every response conforming to the OpenAPI document, and no refusal unaudited
or audited twice. `python -m bench.fuzz_api --examples 100` is the bigger run."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from bench.fuzz_api import DEFAULT_SEED, fuzz, print_figures

pytestmark = [pytest.mark.temporal, pytest.mark.slow]
EXAMPLES = 20  # per operation; about 900 requests in ~15 s on 2 cores
SEED = DEFAULT_SEED  # recorded: the same seed replays the same cases


async def test_schema_driven_fuzz_finds_no_5xx_no_nonconformance_and_no_unaudited_refusal(
    temporal_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    result = await fuzz(temporal_env.client, tmp_path, examples=EXAMPLES, seed=SEED)
    print_figures(result, tmp_path / "report")
    assert result.operations == 11  # with /healthz, /readyz and /metrics
    assert result.cases >= 500 and result.phases.get("stateful", 0) > 0
    assert result.server_errors == 0, result.statuses
    assert result.schemathesis_failures == [], tmp_path / "report" / "schemathesis-output.txt"
    assert result.schemathesis_exit == 0
    assert result.refusals_answered >= 300  # the fuzz reached the refusals it is meant to
    assert result.unaudited_refusals == 0, result
