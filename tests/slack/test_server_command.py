"""`garrison server` as an operator runs it (a real subprocess) against the fake Slack: a recorded
incident started with `garrison incidents replay` posts one card; a signed Approve from an
authorised analyst runs the action and updates the card; SIGTERM stops it cleanly."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
import uuid
from pathlib import Path

import httpx
import pytest
import yaml
from temporalio.testing import WorkflowEnvironment

from orchestrator.server.tokens import digest
from orchestrator.slack.emulator import slack_emulator
from orchestrator.store.repository import Store
from tests.slack.stack import (
    ALICE,
    BOB,
    BOT_TOKEN,
    CHANNEL,
    DIRECTORY,
    INCIDENT,
    ONCALL_GROUP,
    SECRET,
    click_body,
    eventually,
    signed_headers,
    strict_policy,
)
from tools.emulators.serve import serve

pytestmark = pytest.mark.temporal


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def garrison(*args: str, env: dict[str, str]) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "orchestrator.cli", *args,
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), timeout=120)
    return process.returncode or 0, out.decode(), err.decode()


async def test_garrison_server_posts_one_card_and_applies_a_signed_approve(
    temporal_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    fake = slack_emulator(BOT_TOKEN, usergroups={ONCALL_GROUP: [BOB]})
    state = fake.state.slack
    (tmp_path / "approvers.yaml").write_text(yaml.safe_dump(DIRECTORY), encoding="utf-8")
    (tmp_path / "tokens.yaml").write_text(
        yaml.safe_dump({"tokens": {"alice": digest("tok-alice")}}), encoding="utf-8"
    )
    (tmp_path / "policy.yaml").write_text(
        yaml.safe_dump(strict_policy().model_dump(mode="json")), encoding="utf-8"
    )
    port = free_port()
    async with serve(fake) as slack_url:
        env = {k: v for k, v in os.environ.items() if not k.startswith("GARRISON_")} | {
            "GARRISON_DATA_DIR": str(tmp_path / "data"),
            "GARRISON_TEMPORAL_ADDRESS": temporal_env.client.service_client.config.target_host,
            "GARRISON_TEMPORAL_TASK_QUEUE_PREFIX": f"srv{uuid.uuid4().hex[:6]}",
            "GARRISON_APPROVERS_FILE": str(tmp_path / "approvers.yaml"),
            "GARRISON_API_TOKENS_FILE": str(tmp_path / "tokens.yaml"),
            "GARRISON_POLICY_FILE": str(tmp_path / "policy.yaml"),
            "GARRISON_SLACK_SIGNING_SECRET": SECRET,
            "GARRISON_SLACK_BOT_TOKEN": BOT_TOKEN,
            "GARRISON_SLACK_CHANNEL": CHANNEL,
            "GARRISON_SLACK_API_URL": slack_url,
        }
        server = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "orchestrator.cli", "server",
            "--port", str(port), "--incidents", str(INCIDENT),
            env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        base = f"http://127.0.0.1:{port}"
        try:
            async with httpx.AsyncClient(base_url=base, timeout=30) as http:
                for _ in range(300):
                    try:
                        if (await http.get("/healthz")).status_code == 200:
                            break
                    except httpx.TransportError:
                        pass
                    assert server.returncode is None, await server.stderr.read()  # type: ignore[union-attr]
                    await asyncio.sleep(0.1)

                code, out, err = await garrison("incidents", "replay", str(INCIDENT), env=env)
                assert code == 0, err
                incident_id = out.split("started ", 1)[1].split()[0]

                cards = await eventually(lambda: state.messages.get(CHANNEL), what="a card")
                card = cards[0]
                buttons = next(b for b in card.blocks if b.get("type") == "actions")["elements"]
                value = json.loads(buttons[0]["value"])
                body = click_body(value["approval_id"], value["action_hash"], user=ALICE)
                answer = await http.post(
                    "/slack/interactions", content=body, headers=signed_headers(body)
                )
                assert answer.status_code == 200
                await eventually(
                    lambda: "approved" in json.dumps(card.blocks).lower(), what="card update"
                )
                detail = (
                    await http.get(
                        f"/api/incidents/{incident_id}",
                        headers={"authorization": "Bearer tok-alice"},
                    )
                ).json()
                approval = next(a for a in detail["approvals"] if a["id"] == value["approval_id"])
                assert approval["status"] == "approved"
                assert len([m for m in state.messages[CHANNEL] if m.thread_ts is None]) == 1
                for _ in range(5):  # a small flood: one row now, its count at shutdown
                    assert (await http.get("/api/approvals")).status_code == 401
        finally:
            if server.returncode is None:
                server.send_signal(signal.SIGTERM)
            _, stderr = await asyncio.wait_for(server.communicate(), timeout=60)
        assert "Traceback" not in stderr.decode()
        assert server.returncode == 0, stderr.decode()[-2000:]
    store = await Store.open(f"sqlite:///{tmp_path / 'data' / 'garrison.db'}")
    rows = await store.audit_entries()
    await store.close()
    refused = [r for r in rows if r.type == "http.request_refused" and r.target == "/api/approvals"]
    collapsed = [r.detail["count"] for r in rows if r.type == "http.refusals_collapsed"]
    assert (len(refused), collapsed) == (1, [4])  # written when SIGTERM stopped the server
