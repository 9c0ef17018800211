"""A real `garrison server` for the live parity test, and the simulated analysts who answer its
approval requests over the HTTP API.

`running_server` starts `garrison server --incidents <corpus>` as an operator would: its own data
directory, free ports for HTTP and the embedded Temporal, a tokens file (one sender with the
`ingest` scope, one reader, and the simulated analysts with `read` and `approve`), the simulation's
approver directory (`simulations.analyst.directory_groups` over the policy's tiers) and a copy of
the packaged policy whose tier durations are short, so a request nobody answers expires in
seconds, and whose global isolation breaker is off (see `short_policy`); risk weights and
thresholds are the packaged ones, so outcomes compare with `garrison simulate`'s. It is always
stopped (SIGTERM, then SIGKILL of its group and of its Temporal), whatever the test did.

`AnalystDesk` polls `GET /api/approvals` and decides each pending request as the incident's
`SimulatedAnalyst` would, bound to the request's `action_hash`, with as many distinct analysts
of the approver group as the request needs; a `None` answer is no answer (the request expires).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import yaml

from orchestrator.policy.model import PolicyDocument
from orchestrator.server.tokens import digest
from orchestrator.store.records import ApprovalRecord
from simulations.analyst import (
    ESCALATION_ANALYSTS,
    PRIMARY_ANALYSTS,
    SimulatedAnalyst,
    directory_groups,
)

ROOT = Path(__file__).resolve().parents[2]
PACKAGED_POLICY = ROOT / "orchestrator" / "policy" / "default.yaml"
# A request's life is sla_s + escalation_wait_s: long enough for the desk (polling every
# POLL_S) to answer under load, short enough that an unanswered one costs seconds.
SHORT_TIERS = {"sla_s": 30.0, "reminder_after_s": 15.0, "escalation_wait_s": 30.0}
STARTUP_S = 180.0
STOP_S = 60.0
POLL_S = 0.3


@dataclass(frozen=True)
class LiveServer:
    base_url: str
    sender: str  # bearer token with the `ingest` scope
    reader: str  # bearer token with the `read` scope
    analysts: dict[str, str]  # identity -> bearer token (read, approve)
    data_dir: Path
    log: Path

    def client(self, token: str, timeout: float = 60.0) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=self.base_url,
            headers={"authorization": f"Bearer {token}"},
            timeout=timeout,
            # uvicorn drops a connection idle for 5 s: never reuse one that old (a request on
            # it races the close and fails with a ReadError).
            limits=httpx.Limits(keepalive_expiry=2.0),
        )

    def tail(self, lines: int = 40) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def short_policy() -> dict[str, object]:
    """The packaged policy with its tiers' durations shortened and the global isolation breaker
    off: the corpus sent live at once is years of recordings arriving in a minute, which the
    breaker rightly treats as a wave (simulations count each recording on its own)."""
    document = yaml.safe_load(PACKAGED_POLICY.read_text(encoding="utf-8"))
    for tier in document["tiers"].values():
        tier.update(SHORT_TIERS)
    document["breaker"] = {"max_isolations": None}
    PolicyDocument.model_validate(document)  # still a valid policy
    return document


def _write_config(folder: Path) -> tuple[str, str, dict[str, str]]:
    policy = short_policy()
    (folder / "policy.yaml").write_text(yaml.safe_dump(policy), encoding="utf-8")
    tiers = policy["tiers"]
    assert isinstance(tiers, dict)
    groups = directory_groups(
        {t["approver_group"] for t in tiers.values()},
        {t["escalation_group"] for t in tiers.values()},
    )
    (folder / "approvers.yaml").write_text(yaml.safe_dump({"groups": groups}), encoding="utf-8")
    sender, reader = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    analysts = {who: secrets.token_urlsafe(24) for who in (*PRIMARY_ANALYSTS, *ESCALATION_ANALYSTS)}
    tokens: dict[str, object] = {
        "parity-sender": {"digest": digest(sender), "scopes": ["ingest"]},
        "parity-reader": {"digest": digest(reader), "scopes": ["read"]},
    }
    for who, token in analysts.items():
        tokens[who] = {"digest": digest(token), "scopes": ["read", "approve"]}
    (folder / "tokens.yaml").write_text(yaml.safe_dump({"tokens": tokens}), encoding="utf-8")
    return sender, reader, analysts


@contextlib.asynccontextmanager
async def running_server(folder: Path, incidents: Path) -> AsyncIterator[LiveServer]:
    sender, reader, analysts = _write_config(folder)
    data_dir, log = folder / "data", folder / "server.log"
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GARRISON_")} | {
        "GARRISON_DATA_DIR": str(data_dir),
        "GARRISON_TEMPORAL_EMBEDDED_PORT": str(free_port()),
        "GARRISON_TEMPORAL_EMBEDDED_UI_PORT": str(free_port()),
        "GARRISON_API_TOKENS_FILE": str(folder / "tokens.yaml"),
        "GARRISON_APPROVERS_FILE": str(folder / "approvers.yaml"),
        "GARRISON_POLICY_FILE": str(folder / "policy.yaml"),
    }
    command = [
        sys.executable, "-m", "orchestrator.cli", "server",
        "--host", "127.0.0.1", "--port", str(port), "--incidents", str(incidents),
    ]  # fmt: skip
    with log.open("wb") as sink:  # the child keeps its own descriptor
        process = subprocess.Popen(  # noqa: ASYNC220 (stopped without a loop, in finally)
            command, env=env, cwd=ROOT, stdout=sink, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    server = LiveServer(f"http://127.0.0.1:{port}", sender, reader, analysts, data_dir, log)
    try:
        await _wait_healthy(server, process)
        yield server
    finally:
        _stop(process, data_dir)


async def _wait_healthy(server: LiveServer, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + STARTUP_S
    async with httpx.AsyncClient(base_url=server.base_url, timeout=5) as http:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(
                    f"garrison server exited ({process.returncode}):\n{server.tail()}"
                )
            with contextlib.suppress(httpx.TransportError):
                if (await http.get("/healthz")).status_code == 200:
                    return
            await asyncio.sleep(0.2)
    raise RuntimeError(f"garrison server not healthy within {STARTUP_S:.0f}s:\n{server.tail()}")


def _stop(process: subprocess.Popen[bytes], data_dir: Path) -> None:
    state = data_dir / "temporal.json"
    temporal_pid = json.loads(state.read_text())["pid"] if state.exists() else None
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)  # a clean stop also stops its embedded Temporal
        try:
            process.wait(timeout=STOP_S)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
    if temporal_pid is not None:  # the Temporal this server started (its own process group)
        deadline = time.monotonic() + 15
        while _alive(temporal_pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        if _alive(temporal_pid):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(temporal_pid, signal.SIGKILL)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


@dataclass
class AnalystDesk:
    """The simulated on-call team, deciding over the API. `analyst_of` gives the simulated
    analyst of an incident id (None: not ours, left alone)."""

    server: LiveServer
    analyst_of: Callable[[str], SimulatedAnalyst | None]
    handled: set[str] = field(default_factory=set)
    decided: dict[str, list[tuple[str, str, int]]] = field(default_factory=dict)
    unanswered: set[str] = field(default_factory=set)
    problems: list[str] = field(default_factory=list)

    async def run(self) -> None:
        """Answer pending requests until cancelled."""
        clients = {who: self.server.client(token) for who, token in self.server.analysts.items()}
        try:
            while True:
                try:
                    reply = await clients[PRIMARY_ANALYSTS[0]].get(
                        "/api/approvals", params={"status": "pending"}
                    )
                except httpx.TransportError as error:
                    self.problems.append(f"GET /api/approvals: {error!r}")
                    await asyncio.sleep(POLL_S)
                    continue
                if reply.status_code != 200:
                    self.problems.append(f"GET /api/approvals: {reply.status_code} {reply.text}")
                for raw in reply.json() if reply.status_code == 200 else []:
                    approval = ApprovalRecord.model_validate(raw)
                    if approval.id not in self.handled:
                        self.handled.add(approval.id)
                        await self._answer(approval, clients)
                await asyncio.sleep(POLL_S)
        finally:
            for http in clients.values():
                await http.aclose()

    async def _answer(
        self, approval: ApprovalRecord, clients: dict[str, httpx.AsyncClient]
    ) -> None:
        analyst = self.analyst_of(approval.incident_id)
        if analyst is None:
            return
        decision = analyst.decide(approval.action)
        if decision is None:  # the analyst never answers: the request must expire
            self.unanswered.add(approval.id)
            return
        body = {"decision": decision.value, "action_hash": approval.action_hash}
        for who in PRIMARY_ANALYSTS[: approval.required_approvers]:
            reply = await clients[who].post(f"/api/approvals/{approval.id}/decision", json=body)
            self.decided.setdefault(approval.id, []).append(
                (who, decision.value, reply.status_code)
            )
            if reply.status_code != 200:
                self.problems.append(
                    f"{approval.incident_id} {approval.action.kind.value} {approval.action.target}"
                    f": {who} {decision.value} -> {reply.status_code} {reply.text[:200]}"
                )
                return
            status = str(reply.json()["status"])
            if status != "recorded" and not status.startswith("queued"):
                return  # decided: a denial, or the last approval the request needed
