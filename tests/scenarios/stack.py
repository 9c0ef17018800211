"""A Garrison deployment for the load scenarios, every process real: `garrison server --no-workers`
(the HTTP API and a dispatcher) and any number of scenario workers (`worker.py`: the real worker
runtime over journaled twins), all on one given Temporal, one SQLite store in the stack's folder,
one task-queue prefix and ingestion scope of the run's own (`scope`), so runs sharing the test
session's Temporal never see each other's workflows.

Processes run in their own process groups with logs in the folder; a scenario kills (SIGKILL) and
restarts workers by name; `close()` stops whatever is left (SIGTERM, then SIGKILL). The API has a
sender token (`ingest`), a reader (`read`) and the simulated analysts (`read`, `approve`) of the
directory; the policy is the packaged one with short approval tiers (`short_policy`), with any
top-level keys the scenario gives in `StackConfig.policy` in their place.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import yaml

from orchestrator.policy.model import PolicyDocument
from orchestrator.server.tokens import digest
from orchestrator.settings import GarrisonSettings, TemporalSettings
from simulations.analyst import (
    ESCALATION_ANALYSTS,
    PRIMARY_ANALYSTS,
    SimulatedAnalyst,
    directory_groups,
)
from simulations.spec import AnalystPolicy, AnalystSpec, Truth
from tests.simulations.live_stack import AnalystDesk, LiveServer, free_port, short_policy
from tools.models import Category, Environment, Verdict

ROOT = Path(__file__).resolve().parents[2]
STARTUP_S = 180.0
STOP_S = 30.0
WORKER = "tests.scenarios.worker"


@dataclass(frozen=True)
class StackConfig:
    folder: Path
    temporal_address: str
    scope: str  # `^[a-z0-9][a-z0-9_]{0,31}$`: ingestion scope and task-queue prefix
    world: Environment  # what incidents of live grouping are served (`backends.py`)
    recordings: tuple[Path, ...] = ()  # what correlated `<tag>--<recorded id>` incidents are
    server_env: Mapping[str, str] = field(default_factory=dict)  # GARRISON_* for the server only
    policy: Mapping[str, object] = field(default_factory=dict)  # top-level keys over short_policy
    sweep_s: float = 1.0


@dataclass
class Tokens:
    sender: str
    reader: str
    analysts: dict[str, str]


class ScenarioStack:
    def __init__(self, config: StackConfig) -> None:
        self.config = config
        self.folder = config.folder
        self.data_dir = config.folder / "data"
        self.journal_dir = config.folder / "journal"
        self.policy_file = config.folder / "policy.yaml"
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.tokens = self._write_config()
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.starts: dict[str, int] = {}

    # -- configuration ----------------------------------------------------------------------

    def _write_config(self) -> Tokens:
        self.folder.mkdir(parents=True, exist_ok=True)
        policy = short_policy() | dict(self.config.policy)
        PolicyDocument.model_validate(policy)  # still a valid policy
        self.policy_file.write_text(yaml.safe_dump(policy), encoding="utf-8")
        tiers = policy["tiers"]
        assert isinstance(tiers, dict)
        groups = directory_groups(
            {t["approver_group"] for t in tiers.values()},
            {t["escalation_group"] for t in tiers.values()},
        )
        approvers = {"groups": groups}
        (self.folder / "approvers.yaml").write_text(yaml.safe_dump(approvers), encoding="utf-8")
        tokens = Tokens(
            secrets.token_urlsafe(24),
            secrets.token_urlsafe(24),
            {w: secrets.token_urlsafe(24) for w in (*PRIMARY_ANALYSTS, *ESCALATION_ANALYSTS)},
        )
        entries: dict[str, object] = {
            "scenario-sender": {"digest": digest(tokens.sender), "scopes": ["ingest"]},
            "scenario-reader": {"digest": digest(tokens.reader), "scopes": ["read"]},
        }
        for who, token in tokens.analysts.items():
            entries[who] = {"digest": digest(token), "scopes": ["read", "approve"]}
        (self.folder / "tokens.yaml").write_text(
            yaml.safe_dump({"tokens": entries}), encoding="utf-8"
        )
        (self.folder / "world.json").write_text(
            self.config.world.model_dump_json(), encoding="utf-8"
        )
        return tokens

    def env(self) -> dict[str, str]:
        """What every process of the stack is configured with."""
        base = {k: v for k, v in os.environ.items() if not k.startswith("GARRISON_")}
        return base | {
            "PYTHONPATH": str(ROOT),
            "GARRISON_DATA_DIR": str(self.data_dir),
            "GARRISON_TEMPORAL_ADDRESS": self.config.temporal_address,
            "GARRISON_TEMPORAL_TASK_QUEUE_PREFIX": self.config.scope,
            "GARRISON_INGEST__SCOPE": self.config.scope,
            "GARRISON_INGEST__SWEEP_S": str(self.config.sweep_s),
            "GARRISON_API_TOKENS_FILE": str(self.folder / "tokens.yaml"),
            "GARRISON_APPROVERS_FILE": str(self.folder / "approvers.yaml"),
            "GARRISON_POLICY_FILE": str(self.policy_file),
        }

    def settings(self) -> GarrisonSettings:
        """The stack's settings, for reading its store from the test (`open_store`)."""
        return GarrisonSettings(
            data_dir=self.data_dir,
            temporal=TemporalSettings(
                address=self.config.temporal_address, task_queue_prefix=self.config.scope
            ),
        )

    def live_server(self) -> LiveServer:
        """The view `tests.simulations.live_stack.AnalystDesk` decides approvals through."""
        return LiveServer(
            self.base_url,
            self.tokens.sender,
            self.tokens.reader,
            self.tokens.analysts,
            self.data_dir,
            self.log("server"),
        )

    def log(self, name: str) -> Path:
        return self.folder / f"{name}.log"

    # -- processes --------------------------------------------------------------------------

    def _spawn(self, name: str, args: list[str], extra: Mapping[str, str]) -> None:
        self.starts[name] = self.starts.get(name, 0) + 1
        with self.log(name).open("ab") as sink:  # the child keeps its own descriptor
            self.processes[name] = subprocess.Popen(
                [sys.executable, "-m", *args], env=self.env() | dict(extra), cwd=ROOT,
                stdout=sink, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip

    async def start_server(self) -> None:
        args = [
            "orchestrator.cli", "server", "--no-workers",
            "--host", "127.0.0.1", "--port", str(self.port),
        ]  # fmt: skip
        self._spawn("server", args, self.config.server_env)
        await self._wait(
            "server", lambda: _healthy(self.base_url), what="the server's /healthz to answer"
        )

    async def start_worker(self, name: str, queues: str = "triage,agents,actions") -> None:
        args = [
            WORKER, "--queues", queues, "--world", str(self.folder / "world.json"),
            "--journal-dir", str(self.journal_dir),
        ]  # fmt: skip
        if self.config.recordings:
            args += ["--incidents", *map(str, self.config.recordings)]
        mark = self.log(name).stat().st_size if self.log(name).exists() else 0
        self._spawn(name, args, {})

        async def ready() -> bool:
            with self.log(name).open("rb") as text:
                text.seek(mark)
                return b"worker ready" in text.read()

        await self._wait(name, ready, what=f"{name} to be ready")

    async def _wait(self, name: str, check: Callable[[], Awaitable[bool]], *, what: str) -> None:
        process = self.processes[name]
        deadline = time.monotonic() + STARTUP_S
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited ({process.returncode}):\n{self.tail(name)}")
            if await check():
                return
            await asyncio.sleep(0.2)
        raise RuntimeError(f"timed out waiting for {what}:\n{self.tail(name)}")

    def kill(self, name: str) -> None:
        """SIGKILL the process and its group, as the OOM killer or a power cut would."""
        process = self.processes[name]
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)

    def stop(self, name: str) -> int | None:
        """SIGTERM, then SIGKILL after `STOP_S`; the exit code."""
        process = self.processes[name]
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=STOP_S)
            except subprocess.TimeoutExpired:
                self.kill(name)
        return process.returncode

    def close(self) -> None:
        for name in list(self.processes):
            self.stop(name)

    def rss_mib(self) -> dict[str, float]:
        """Resident memory of each running process (MiB)."""
        sizes = {name: rss_mib(p.pid) for name, p in self.processes.items() if p.poll() is None}
        return {name: size for name, size in sizes.items() if size is not None}

    def tail(self, name: str, lines: int = 40) -> str:
        log = self.log(name)
        text = log.read_text(errors="replace") if log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def tracebacks(self) -> dict[str, int]:
        """How many tracebacks each process logged."""
        return {
            name: self.log(name).read_text(errors="replace").count("Traceback")
            for name in self.processes
        }


def rss_mib(pid: int) -> float | None:
    """A process's resident memory (MiB) from /proc; None when it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    line = next((x for x in status.splitlines() if x.startswith("VmRSS:")), None)
    return None if line is None else int(line.split()[1]) / 1024


async def _healthy(base_url: str) -> bool:
    try:
        async with httpx.AsyncClient(base_url=base_url, timeout=5) as http:
            return (await http.get("/healthz")).status_code == 200
    except httpx.TransportError:
        return False


@contextlib.asynccontextmanager
async def scenario_stack(config: StackConfig) -> AsyncIterator[ScenarioStack]:
    """The stack with its server started; every process stopped on exit, whatever happened."""
    stack = ScenarioStack(config)
    try:
        await stack.start_server()
        yield stack
    finally:
        stack.close()


def approving_desk(stack: ScenarioStack) -> AnalystDesk:
    """Simulated analysts who approve every request of the run, over the API, with as many
    distinct people as each request needs (`AnalystDesk`)."""
    analyst = SimulatedAnalyst(
        AnalystSpec(policy=AnalystPolicy.APPROVE_ALL, latency_s=0),
        Truth(verdict=Verdict.MALICIOUS, category=Category.EXECUTION),
    )
    scope = stack.config.scope
    return AnalystDesk(
        stack.live_server(), lambda i: analyst if i.startswith(f"{scope}-") else None
    )


@contextlib.asynccontextmanager
async def deciding(desk: AnalystDesk) -> AsyncIterator[AnalystDesk]:
    """The desk answering in the background while the block runs."""
    task = asyncio.create_task(desk.run())
    try:
        yield desk
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
