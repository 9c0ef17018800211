"""A `garrison server` SIGKILLed between the commit of an alert and its signal: the store is the
source of truth, so the next server's dispatcher sweeps the committed, unsignalled alert into its
incident's workflow, which then runs to its end."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
import uuid
from pathlib import Path

import httpx
import pytest
import yaml
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from orchestrator.ingest.shapes import alert_to_ocsf
from orchestrator.policy.model import load_policy
from orchestrator.server.tokens import digest
from simulations.loader import load_all
from tests.slack.stack import DIRECTORY, INCIDENT

pytestmark = [pytest.mark.temporal, pytest.mark.slow]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def start_server(
    env: dict[str, str], port: int, incident: Path = INCIDENT
) -> asyncio.subprocess.Process:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "orchestrator.cli", "server",
        "--port", str(port), "--incidents", str(incident),
        env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        start_new_session=True,
    )  # fmt: skip
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
        for _ in range(600):
            try:
                if (await http.get("/healthz")).status_code == 200:
                    return process
            except httpx.TransportError:
                pass
            if process.returncode is not None:
                raise AssertionError(await process.stderr.read())  # type: ignore[union-attr]
            await asyncio.sleep(0.1)
    raise AssertionError("garrison server did not come up")


async def test_an_alert_committed_before_a_sigkill_reaches_its_incident_afterwards(
    temporal_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    loaded = load_all([INCIDENT]).incidents[0]
    spec = loaded.spec
    findings = [
        alert_to_ocsf(a, spec.environment, event_uid_prefix=spec.id, correlation_uid=spec.id)
        for a in spec.alerts
    ]
    (tmp_path / "approvers.yaml").write_text(yaml.safe_dump(DIRECTORY), encoding="utf-8")
    tokens = {
        "siem": {"digest": digest("tok-siem"), "scopes": ["ingest"]},
        "alice": digest("tok-alice"),
    }
    (tmp_path / "tokens.yaml").write_text(yaml.safe_dump({"tokens": tokens}), encoding="utf-8")
    # Nothing of this incident waits for a human: the test is about the signal, not approvals.
    lenient = load_policy(None).model_copy(
        update={"threshold": 100, "two_approver_above": 100, "version": "test-crash"}
    )
    (tmp_path / "policy.yaml").write_text(
        yaml.safe_dump(lenient.model_dump(mode="json")), encoding="utf-8"
    )
    scope = f"crash{uuid.uuid4().hex[:6]}"  # the session's Temporal is shared: own workflow ids
    env = {k: v for k, v in os.environ.items() if not k.startswith("GARRISON_")} | {
        "GARRISON_DATA_DIR": str(tmp_path / "data"),
        "GARRISON_TEMPORAL_ADDRESS": temporal_env.client.service_client.config.target_host,
        "GARRISON_TEMPORAL_TASK_QUEUE_PREFIX": f"crash{uuid.uuid4().hex[:6]}",
        "GARRISON_APPROVERS_FILE": str(tmp_path / "approvers.yaml"),
        "GARRISON_API_TOKENS_FILE": str(tmp_path / "tokens.yaml"),
        "GARRISON_POLICY_FILE": str(tmp_path / "policy.yaml"),
        "GARRISON_INGEST__SWEEP_S": "0.2",
        "GARRISON_INGEST__SCOPE": scope,
    }
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    first = await start_server(env | {"GARRISON_INGEST__DISPATCH_PAUSED": "1"}, port)
    try:
        async with httpx.AsyncClient(base_url=base, timeout=30) as http:
            reply = await http.post(
                "/api/alerts", json=findings, headers={"authorization": "Bearer tok-siem"}
            )
        assert reply.status_code == 202, reply.text
        [incident_id] = reply.json()["incidents"]
        assert incident_id == f"{scope}--{spec.id}"
        handle = temporal_env.client.get_workflow_handle(f"incident-{incident_id}")
        with pytest.raises(RPCError):  # committed, acknowledged, and not yet signalled
            await handle.describe()
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        await first.wait()

    second = await start_server(env, port)
    try:
        async with httpx.AsyncClient(base_url=base, timeout=30) as http:
            detail: dict[str, object] = {}
            for _ in range(1_200):
                answer = await http.get(
                    f"/api/incidents/{incident_id}", headers={"authorization": "Bearer tok-alice"}
                )
                detail = answer.json()
                if detail["incident"]["status"] == "closed":  # type: ignore[index]
                    break
                await asyncio.sleep(0.1)
        assert detail["incident"]["status"] == "closed", detail  # type: ignore[index]
        assert len(detail["alerts"]) == len(spec.alerts)  # type: ignore[arg-type]
        assert detail["incident"]["verdict"] == spec.truth.verdict.value  # type: ignore[index]
        # The store says closed once `incidents.close` ran; the workflow returns a moment later.
        await asyncio.wait_for(handle.result(), timeout=60)
        assert (await handle.describe()).close_time is not None
    finally:
        second.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(second.communicate(), timeout=60)
    assert "Traceback" not in stderr.decode()
