"""Logs: one JSON object per line with `GARRISON_LOG_FORMAT=json` (incident, workflow and activity
where known), readable text otherwise, and no configured secret in any line: a simulation of one
incident through the real vendor adapters and their emulators, every logger at DEBUG, is captured
and every line searched for every secret of the settings and of the vendors' settings."""

from __future__ import annotations

import io
import json
import logging
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr
from temporalio.testing import WorkflowEnvironment

from orchestrator.observability import logs
from orchestrator.settings import GarrisonSettings, SlackSettings, TemporalSettings
from simulations.loader import load_all
from simulations.runner import SimulationOptions, run_simulation
from tools.vendors import DEFAULT_EMULATED, vendor

ROOT = Path(__file__).parents[3]
INCIDENT = ROOT / "simulations" / "incidents" / "otrf-lsass-procdump-acct01"
SIGNING_SECRET = "test-signing-secret-" + uuid.uuid4().hex
BOT_TOKEN = "xoxb-test-" + uuid.uuid4().hex


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    """The root logger's handlers replaced for the test, put back after it."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    stream = io.StringIO()
    yield stream
    root.handlers[:] = handlers
    root.setLevel(level)


def test_a_json_line_names_the_incident_and_hides_a_secret(captured: io.StringIO) -> None:
    logs.protect(
        GarrisonSettings(
            api_tokens_file=None, temporal=TemporalSettings(api_key=SecretStr(SIGNING_SECRET))
        )
    )
    logs.configure("json", logging.INFO, captured)
    log = logging.getLogger("garrison.test")
    try:
        raise RuntimeError(f"refused with {SIGNING_SECRET}")
    except RuntimeError:
        log.exception(
            "sending %s failed",
            SIGNING_SECRET,
            extra={"temporal_activity": {"workflow_id": "incident-inc-1", "run_id": "r1"}},
        )
    line = json.loads(captured.getvalue())
    assert line["message"] == "sending [redacted] failed"
    assert line["error"] == "RuntimeError: refused with [redacted]"
    assert (line["incident_id"], line["workflow_id"], line["level"]) == (
        "inc-1",
        "incident-inc-1",
        "error",
    )


def test_text_is_one_readable_line(captured: io.StringIO) -> None:
    logs.configure("text", logging.INFO, captured)
    logging.getLogger("garrison.test").warning(
        "late alert", extra={"temporal_workflow": {"workflow_id": "incident-inc-2"}}
    )
    assert captured.getvalue() == "WARNING garrison.test: late alert [incident=inc-2]\n"


@pytest.mark.temporal
@pytest.mark.simulation
async def test_no_secret_in_any_line_of_a_simulated_incident(
    temporal_env: WorkflowEnvironment, tmp_path: Path, captured: io.StringIO
) -> None:
    settings = GarrisonSettings(
        data_dir=tmp_path / "data",
        temporal=TemporalSettings(
            address=temporal_env.client.service_client.config.target_host,
            task_queue_prefix=f"l{uuid.uuid4().hex[:8]}",
        ),
        slack=SlackSettings(
            signing_secret=SecretStr(SIGNING_SECRET),
            bot_token=SecretStr(BOT_TOKEN),
            channel="C0SOCAPPROVALS",
        ),
    )
    logs.protect(settings)  # as `settings_or_exit` does
    logs.configure("json", logging.DEBUG, captured)
    emulated = {capability: vendor(name) for capability, name in DEFAULT_EMULATED.items()}
    secrets = [SIGNING_SECRET, BOT_TOKEN]
    for spec in emulated.values():  # what the adapters are configured with
        secrets += logs._secret_values(spec.emulator_settings("http://127.0.0.1:1"))
    assert len(secrets) > 2

    card = await run_simulation(
        load_all([INCIDENT]).incidents, settings, SimulationOptions(emulated=emulated)
    )
    # The slack secrets reach a log line through a careless message too, and are still hidden.
    logging.getLogger("garrison.test").warning("slack: %s", settings.slack.bot_token and BOT_TOKEN)

    lines = captured.getvalue().splitlines()
    assert card.per_incident[0].executed_actions  # the incident did call the vendors
    assert len(lines) > 100, "DEBUG logging captured too little to mean anything"
    entries = [json.loads(line) for line in lines]  # every line is one JSON object
    leaked = [(s, line) for line in lines for s in secrets if s in line]
    assert leaked == []
    assert entries[-1]["message"] == "slack: [redacted]"
    with_incident = [e for e in entries if e.get("incident_id")]
    assert with_incident and all("workflow_id" in e for e in with_incident)
