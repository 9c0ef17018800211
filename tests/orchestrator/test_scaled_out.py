"""A scaled-out deployment as an operator runs it, every process real: `garrison server
--no-workers` (the API and Slack interactivity), one `garrison worker --queues agents` and one
`garrison worker --queues actions,triage`, on one Temporal, with Slack configured against the fake
Slack. A recorded incident started with `garrison incidents replay` has its approval cards posted
by the worker that runs `triage`, each exactly once, and approved through the server's Slack
endpoint it runs to the end."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import uuid
from collections import Counter
from pathlib import Path

import httpx
import pytest
import yaml
from temporalio.testing import WorkflowEnvironment

from orchestrator.backends import workflow_id
from orchestrator.composition import open_store
from orchestrator.settings import GarrisonSettings, TemporalSettings
from orchestrator.slack.emulator import StoredMessage, slack_emulator
from tests.orchestrator.processes import clean_environment
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
from tests.slack.test_server_command import free_port, garrison
from tools.emulators.serve import serve

pytestmark = [pytest.mark.temporal, pytest.mark.slow]


def approval_of(message: StoredMessage) -> str | None:
    key = (message.metadata or {}).get("event_payload", {}).get("key", "")
    return key.removeprefix("approval:") if key.startswith("approval:") else None


async def start(*args: str, env: dict[str, str], log: Path) -> asyncio.subprocess.Process:
    with log.open("wb") as sink:  # the child keeps its own descriptor
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", "orchestrator.cli", *args, env=env, stdout=sink, stderr=sink
        )


async def test_scaled_out_workers_post_every_approval_card_exactly_once(
    temporal_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    fake = slack_emulator(BOT_TOKEN, usergroups={ONCALL_GROUP: [BOB]})
    state = fake.state.slack
    (tmp_path / "approvers.yaml").write_text(yaml.safe_dump(DIRECTORY), encoding="utf-8")
    (tmp_path / "policy.yaml").write_text(
        yaml.safe_dump(strict_policy().model_dump(mode="json")), encoding="utf-8"
    )
    address = temporal_env.client.service_client.config.target_host
    prefix = f"so{uuid.uuid4().hex[:6]}"
    port = free_port()
    recorded = ["--incidents", str(INCIDENT)]
    shared = ["--journal-dir", str(tmp_path / "journal")]  # the twins' state, as a vendor's
    async with serve(fake) as slack_url:
        env = clean_environment() | {
            "GARRISON_DATA_DIR": str(tmp_path / "data"),
            "GARRISON_TEMPORAL_ADDRESS": address,
            "GARRISON_TEMPORAL_TASK_QUEUE_PREFIX": prefix,
            "GARRISON_APPROVERS_FILE": str(tmp_path / "approvers.yaml"),
            "GARRISON_POLICY_FILE": str(tmp_path / "policy.yaml"),
            "GARRISON_SLACK_SIGNING_SECRET": SECRET,
            "GARRISON_SLACK_BOT_TOKEN": BOT_TOKEN,
            "GARRISON_SLACK_CHANNEL": CHANNEL,
            "GARRISON_SLACK_API_URL": slack_url,
        }
        logs = {name: tmp_path / f"{name}.log" for name in ("server", "agents", "actions")}
        processes = {
            "server": await start(
                "server", "--no-workers", "--port", str(port), *recorded,
                env=env, log=logs["server"],
            ),
            "agents": await start(
                "worker", "--queues", "agents", *recorded, *shared, env=env, log=logs["agents"]
            ),
            "actions": await start(
                "worker", "--queues", "actions,triage", *recorded, *shared,
                env=env, log=logs["actions"],
            ),
        }  # fmt: skip
        result: asyncio.Future[object] | None = None
        try:
            for name in ("agents", "actions"):
                await eventually(
                    lambda name=name: (
                        processes[name].returncode is not None
                        or "worker ready" in logs[name].read_text(encoding="utf-8")
                    ),
                    what=f"the {name} worker",
                )
                assert processes[name].returncode is None, logs[name].read_text(encoding="utf-8")
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
                for _ in range(300):
                    try:
                        if (await http.get("/healthz")).status_code == 200:
                            break
                    except httpx.TransportError:
                        pass
                    assert processes["server"].returncode is None, logs["server"].read_text()
                    await asyncio.sleep(0.1)

                code, out, err = await garrison("incidents", "replay", str(INCIDENT), env=env)
                assert code == 0, err
                incident_id = out.split("started ", 1)[1].split()[0]
                handle = temporal_env.client.get_workflow_handle(workflow_id(incident_id))
                result = asyncio.ensure_future(handle.result())
                await eventually(
                    lambda: any(map(approval_of, state.messages.get(CHANNEL, []))),
                    what="an approval card posted by the triage worker",
                )

                clicked: set[str] = set()
                async with asyncio.timeout(90):
                    while not result.done():
                        for card in list(state.messages.get(CHANNEL, [])):
                            approval = approval_of(card)
                            if approval is None or approval in clicked:
                                continue
                            clicked.add(approval)
                            buttons = next(b for b in card.blocks if b.get("type") == "actions")
                            value = json.loads(buttons["elements"][0]["value"])
                            for user in (ALICE, BOB):  # two, for a request that needs two
                                body = click_body(
                                    value["approval_id"], value["action_hash"], user=user
                                )
                                headers = signed_headers(body)
                                answer = await http.post(
                                    "/slack/interactions", content=body, headers=headers
                                )
                                assert answer.status_code == 200
                        await asyncio.sleep(0.1)
                await result
        finally:
            if result is not None:
                result.cancel()
            for process in processes.values():
                if process.returncode is None:
                    process.send_signal(signal.SIGTERM)
            for process in processes.values():
                await asyncio.wait_for(process.wait(), timeout=60)

    settings = GarrisonSettings(
        data_dir=tmp_path / "data", temporal=TemporalSettings(address=address)
    )
    store = await open_store(settings)
    try:
        requested = {a.id for a in await store.list_approvals(incident_id=incident_id)}
    finally:
        await store.close()
    posted = Counter(
        approval for m in state.messages.get(CHANNEL, []) if (approval := approval_of(m))
    )
    assert requested, "the strict policy asks for approvals"
    assert set(posted) == requested
    assert all(count == 1 for count in posted.values()), posted
    for name, process in processes.items():
        text = logs[name].read_text(encoding="utf-8")
        assert process.returncode == 0, text[-2000:]
        assert "Traceback" not in text
