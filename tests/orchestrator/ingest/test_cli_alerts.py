"""`garrison alerts dead-letter list|retry`, `garrison api-token --scope` and `garrison rehearse`,
run as an operator runs them: real subprocesses against a real store (and a real server)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from temporalio.testing import WorkflowEnvironment

from orchestrator.server.tokens import ApiTokens, Scope, digest
from orchestrator.store.repository import Store
from tests.orchestrator.ingest.test_alerts_api import garrison_alert
from tests.orchestrator.ingest.test_crash_after_commit import free_port, start_server
from tests.slack.stack import DIRECTORY, INCIDENT


def garrison(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "orchestrator.cli", *args],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def clean_env(data: Path) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("GARRISON_")}
    return base | {"GARRISON_DATA_DIR": str(data)}


async def test_dead_letters_are_listed_and_retried_through_ingestion(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    store = await Store.open(f"sqlite:///{data / 'garrison.db'}")
    now = datetime.now(UTC)
    bad = json.dumps({**garrison_alert("x1"), "severity": "apocalyptic"})
    good = json.dumps(garrison_alert("g1"))
    bad_id = await store.intake.add_dead_letter("api:siem", bad, "severity: invalid", now)
    good_id = await store.intake.add_dead_letter("api:siem", good, "store was down", now)
    await store.close()
    env = clean_env(data)

    listed = garrison("alerts", "dead-letter", "list", "--json", env=env)
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    assert [r["id"] for r in rows] == [bad_id, good_id]
    assert rows[0]["reason"] == "severity: invalid" and rows[0]["channel"] == "api:siem"

    retried = garrison("alerts", "dead-letter", "retry", str(bad_id), str(good_id), env=env)
    assert retried.returncode == 1  # one is still refused
    assert f"{bad_id}: still refused: severity" in retried.stdout
    assert f"{good_id}: accepted as" in retried.stdout
    unknown = garrison("alerts", "dead-letter", "retry", "999", env=env)
    assert unknown.returncode == 1 and "no such dead letter" in unknown.stdout
    wrong = garrison("alerts", "dead-letter", "retry", "1", "--shape", "qradar", env=env)
    assert wrong.returncode == 2 and "shapes are" in wrong.stderr

    store = await Store.open(f"sqlite:///{data / 'garrison.db'}")
    try:
        still_open = await store.intake.dead_letters()
        assert [d.id for d in still_open] == [bad_id]
        assert still_open[0].attempts == 1
        [incident] = await store.list_incidents()
        assert [a.uid for a in await store.alerts_for(incident.id)] == ["g1"]
        assert len(await store.intake.unsignalled(10)) == 1  # a server's dispatcher takes it
    finally:
        await store.close()


def test_api_token_with_scopes_prints_a_line_the_tokens_file_accepts(tmp_path: Path) -> None:
    env = clean_env(tmp_path)
    minted = garrison("api-token", "splunk-prod", "--scope", "ingest", env=env)
    assert minted.returncode == 0, minted.stderr
    token = minted.stdout.split("shown once): ", 1)[1].split()[0]
    line = minted.stdout.split("tokens file line:", 1)[1].strip()
    path = tmp_path / "tokens.yaml"
    path.write_text("tokens:\n  " + line + "\n", encoding="utf-8")
    assert ApiTokens.load(path).authenticate(token) == ("splunk-prod", frozenset({Scope.INGEST}))
    refused = garrison("api-token", "x", "--scope", "root", env=env)
    assert refused.returncode == 2 and "scopes are read, approve, ingest" in refused.stderr


@pytest.mark.temporal
@pytest.mark.slow
async def test_rehearse_streams_a_recording_into_a_running_server(
    temporal_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    (tmp_path / "approvers.yaml").write_text(yaml.safe_dump(DIRECTORY), encoding="utf-8")
    tokens = {"siem": {"digest": digest("tok-siem"), "scopes": ["ingest"]}}
    (tmp_path / "tokens.yaml").write_text(yaml.safe_dump({"tokens": tokens}), encoding="utf-8")
    scope = f"reh{uuid.uuid4().hex[:6]}"  # the session's Temporal is shared: own workflow ids
    env = clean_env(tmp_path / "data") | {
        "GARRISON_INGEST__SCOPE": scope,
        "GARRISON_TEMPORAL_ADDRESS": temporal_env.client.service_client.config.target_host,
        "GARRISON_TEMPORAL_TASK_QUEUE_PREFIX": f"reh{uuid.uuid4().hex[:6]}",
        "GARRISON_APPROVERS_FILE": str(tmp_path / "approvers.yaml"),
        "GARRISON_API_TOKENS_FILE": str(tmp_path / "tokens.yaml"),
    }
    port = free_port()
    server = await start_server(env, port)
    try:
        url = f"http://127.0.0.1:{port}"
        no_token = await asyncio.to_thread(garrison, "rehearse", str(INCIDENT), env=env)
        assert no_token.returncode == 2 and "ingest scope is required" in no_token.stderr
        run = await asyncio.to_thread(
            garrison, "rehearse", str(INCIDENT), "--speed", "100000", "--url", url,
            "--token", "tok-siem", env=env,
        )  # fmt: skip
        assert run.returncode == 0, run.stdout + run.stderr
        assert f"into 1 incident(s): {scope}--{INCIDENT.name}; refused 0" in run.stdout
        handle = temporal_env.client.get_workflow_handle(f"incident-{scope}--{INCIDENT.name}")
        assert (await handle.describe()).workflow_type == "IncidentWorkflow"
    finally:
        server.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(server.communicate(), timeout=60)
    assert "Traceback" not in stderr.decode()
