"""The real `langchain-openai` client against an OpenAI-compatible server over loopback HTTP
(tests/models/openai_server.py): `garrison simulate --model openai:... --record-model DIR` runs
incidents through the model, and `--model replay:DIR` gives the same scorecard with the server
gone (with `--compare-rules`, beside a run of the rules alone); a replay that lacks a call fails
the run, naming it."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from orchestrator.store.model_use import ModelUsageRecord
from orchestrator.store.repository import Store

pytest.importorskip("langchain_openai")

pytestmark = [pytest.mark.simulation, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
INCIDENTS = ROOT / "simulations" / "incidents"
# One malicious incident with containment and one benign one, where the canned verdict disagrees.
RECORDED = ["otrf-empire-runkey-ws5", "otrf-machine-logoffs-hfdc01-1225"]
UNRECORDED = "otrf-empire-vbs-c2-ws5"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "tests" / "models" / "openai_server.py"), str(port)]
    )
    base = f"http://127.0.0.1:{port}/v1"
    try:
        for _ in range(100):
            try:
                httpx.get(f"{base}/requests", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=10)


def simulate(tmp_path: Path, *args: str, env: dict[str, str] | None = None):
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("GARRISON_", "OPENAI_"))}
    return subprocess.run(
        [sys.executable, "-m", "orchestrator.cli", "simulate", *args],
        env={**clean, "GARRISON_DATA_DIR": str(tmp_path / "data"), **(env or {})},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


async def stored_usage(data_dir: Path) -> dict[str, dict[str, ModelUsageRecord]]:
    store = await Store.open(f"sqlite:///{data_dir / 'garrison.db'}")
    try:
        ids = [i.id for i in await store.list_incidents()]
        found = await store.model_use.usage_for(ids)
    finally:
        await store.close()
    return {i: {r.role: r for r in records} for i, records in found.items()}


def rows(report: Path) -> dict[str, tuple[Any, ...]]:
    card = json.loads(report.read_text("utf-8"))
    return {
        row["id"]: (
            row["verdict"],
            sorted((a["kind"], a["target"]) for a in row["executed_actions"]),
            sorted((a["kind"], a["target"]) for a in row["denied_actions"]),
            row["model"]["calls"],
            row["model"]["input_tokens"],
            row["model"]["output_tokens"],
            row["model"]["disagreements"],
        )
        for row in card["per_incident"]
    }


def test_record_with_the_openai_client_then_replay_offline(server: str, tmp_path: Path) -> None:
    tape = tmp_path / "tape"
    paths = [str(INCIDENTS / name) for name in RECORDED]
    live = simulate(
        tmp_path,
        *paths,
        "--model", "openai:canned",
        "--record-model", str(tape),
        "--report-json", str(tmp_path / "live.json"),
        env={"GARRISON_MODEL_BASE_URL": server, "OPENAI_API_KEY": "sk-test"},
    )  # fmt: skip
    assert live.returncode == 0, live.stderr[-3000:]
    served = httpx.get(f"{server}/requests").json()["requests"]
    recorded = list(tape.glob("*.json"))
    assert served >= 2 and len(recorded) == served
    calls = [json.loads(path.read_text("utf-8"))["call"] for path in recorded]
    assert "investigation/InvestigationStep" in calls  # the investigation's loop, recorded too
    live_rows = rows(tmp_path / "live.json")
    assert all(row[3] >= 1 for row in live_rows.values())  # every incident asked the model
    assert any(row[6] for row in live_rows.values())  # and the canned verdict disagreed once
    # The scorecard's figures are the store's rows (what the console and /metrics read), by role.
    stored = asyncio.run(stored_usage(tmp_path / "data"))
    card = json.loads((tmp_path / "live.json").read_text("utf-8"))
    for row in card["per_incident"]:
        roles = stored[next(i for i in stored if i.endswith(f"--{row['id']}"))]
        assert row["model"]["calls"] == sum(r.calls for r in roles.values())
        assert {k: v["input_tokens"] for k, v in row["model"]["roles"].items()} == {
            k: r.input_tokens for k, r in roles.items()
        }
        assert roles["summaries"].answered >= 1  # the narrative was written, and recorded

    # Replay: no provider, no key, an endpoint nobody listens on.
    offline = {"GARRISON_MODEL_BASE_URL": "http://127.0.0.1:9/v1"}
    replay = simulate(
        tmp_path,
        *paths,
        "--model", f"replay:{tape}",
        "--compare-rules",
        "--report-json", str(tmp_path / "replay.json"),
        env=offline,
    )  # fmt: skip
    assert replay.returncode == 0, replay.stderr[-3000:]
    assert rows(tmp_path / "replay.json") == live_rows
    report = json.loads((tmp_path / "replay.json").read_text("utf-8"))
    assert report["model"]["calls"] == sum(row[3] for row in live_rows.values())
    assert isinstance(report["compare_rules"], list)  # the rules-alone run happened
    assert "compare-rules:" in replay.stdout
    assert httpx.get(f"{server}/requests").json()["requests"] == served

    missing = simulate(
        tmp_path, str(INCIDENTS / UNRECORDED), "--model", f"replay:{tape}", env=offline
    )
    assert missing.returncode == 1
    assert "model replay: no recording of triage/ModelVerdict " in missing.stderr
