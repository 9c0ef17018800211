"""Logs: one JSON object per line with `GARRISON_LOG_FORMAT=json` (incident, workflow and activity
where known), readable text otherwise, and a registered secret replaced wherever it is formatted.
A whole simulated incident's lines are searched for every secret in `test_instrumented_run.py`."""

from __future__ import annotations

import io
import json
import logging
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from orchestrator.observability import logs
from orchestrator.settings import GarrisonSettings, TemporalSettings

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
