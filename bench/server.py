"""The server under test, as a separate process on a free loopback port with a data directory,
tokens and (for `garrison server`) an embedded Temporal of its own; always stopped and cleaned up,
whatever happens to the benchmark.

Two kinds:
- `garrison`: the real `garrison server` (SQLite store, embedded Temporal, `--no-workers` unless
  asked otherwise), so acknowledgements include the real app and the dispatcher signals Temporal
  beside them;
- `app`: `bench.app_server`, the same FastAPI app over the same store and `Ingestor` but without
  Temporal (no dispatcher): ingestion up to the commit only, for comparison and profiling.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import httpx
import yaml

from orchestrator.server.tokens import digest

ROOT = Path(__file__).resolve().parent.parent
INCIDENTS = ROOT / "simulations" / "incidents" / "otrf-lsass-procdump-acct01"
STARTUP_S = 180.0
STOP_S = 60.0


class Kind(StrEnum):
    GARRISON = "garrison"
    APP = "app"


@dataclass(frozen=True)
class Running:
    kind: Kind
    mode: str  # what was measured, in words
    base_url: str
    ingest_token: str
    read_token: str
    pid: int
    data_dir: Path
    log: Path

    def temporal_address(self) -> str | None:
        """The embedded Temporal's address (it may have moved off the port asked for)."""
        state = self.data_dir / "temporal.json"
        if not state.exists():
            return None
        return f"127.0.0.1:{json.loads(state.read_text())['port']}"

    def temporal_pid(self) -> int | None:
        state = self.data_dir / "temporal.json"
        return json.loads(state.read_text())["pid"] if state.exists() else None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def has_no_workers_flag() -> bool:
    help_text = subprocess.run(
        [sys.executable, "-m", "orchestrator.cli", "server", "--help"],
        capture_output=True, text=True, timeout=60, cwd=ROOT, env=_clean_env(),
    ).stdout  # fmt: skip
    return "--no-workers" in help_text


def _clean_env() -> dict[str, str]:
    """This environment without a developer's own GARRISON_* settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GARRISON_")}
    return env | {"PYTHONPATH": str(ROOT)}


def _write_config(tmp: Path) -> tuple[str, str]:
    ingest, read = "bench-" + secrets.token_urlsafe(24), "bench-" + secrets.token_urlsafe(24)
    tokens = {
        "tokens": {
            "bench": {"digest": digest(ingest), "scopes": ["ingest"]},
            "bench-reader": {"digest": digest(read), "scopes": ["read"]},
        }
    }
    (tmp / "tokens.yaml").write_text(yaml.safe_dump(tokens), encoding="utf-8")
    approvers = {"groups": {"soc-primary": {"members": ["bench-analyst"]}}}
    (tmp / "approvers.yaml").write_text(yaml.safe_dump(approvers), encoding="utf-8")
    return ingest, read


def _command(
    kind: Kind, port: int, tmp: Path, *, workers: bool, no_workers_flag: bool, profile: Path | None
) -> list[str]:
    python = [sys.executable] + (["-m", "cProfile", "-o", str(profile)] if profile else [])
    if kind is Kind.APP:
        return [
            *python, "-m", "bench.app_server", "--port", str(port),
            "--data-dir", str(tmp / "data"), "--tokens", str(tmp / "tokens.yaml"),
        ]  # fmt: skip
    return [
        *python, "-m", "orchestrator.cli", "server", "--host", "127.0.0.1", "--port", str(port),
        "--incidents", str(INCIDENTS),
        *(["--no-workers"] if no_workers_flag and not workers else []),
    ]  # fmt: skip


def _mode(kind: Kind, *, workers: bool, no_workers_flag: bool) -> str:
    if kind is Kind.APP:
        return "bench.app_server: the alerts API + Ingestor over SQLite, no Temporal (commit only)"
    if workers or not no_workers_flag:
        return "garrison server with its workers (agents compete for the cores)"
    return "garrison server --no-workers: commit, then signal-with-start to embedded Temporal"


@contextlib.asynccontextmanager
async def running(
    kind: Kind, *, workers: bool = False, profile: Path | None = None, keep: bool = False
) -> AsyncIterator[Running]:
    """A started server; stopped (SIGTERM, then SIGKILL of its group and of its Temporal) and its
    temporary directory removed on exit, even when the benchmark fails."""
    tmp = Path(tempfile.mkdtemp(prefix="garrison-bench-"))
    process: subprocess.Popen[bytes] | None = None
    data_dir = tmp / "data"
    try:
        ingest, read = _write_config(tmp)
        port = free_port()
        no_workers_flag = kind is Kind.GARRISON and has_no_workers_flag()
        env = _clean_env() | {
            "GARRISON_DATA_DIR": str(data_dir),
            "GARRISON_APPROVERS_FILE": str(tmp / "approvers.yaml"),
            "GARRISON_API_TOKENS_FILE": str(tmp / "tokens.yaml"),
            "GARRISON_TEMPORAL_EMBEDDED_PORT": str(free_port()),
            "GARRISON_TEMPORAL_EMBEDDED_UI_PORT": str(free_port()),
        }
        log = tmp / "server.log"
        command = _command(
            kind, port, tmp, workers=workers, no_workers_flag=no_workers_flag, profile=profile
        )
        with log.open("wb") as sink:
            # A fixed argv, no shell; Popen rather than asyncio's so that stopping it needs no loop.
            process = subprocess.Popen(  # noqa: S603, ASYNC220
                command, env=env, cwd=ROOT, stdout=sink, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        base_url = f"http://127.0.0.1:{port}"
        await _wait_healthy(base_url, process, log)
        yield Running(
            kind=kind,
            mode=_mode(kind, workers=workers, no_workers_flag=no_workers_flag),
            base_url=base_url,
            ingest_token=ingest,
            read_token=read,
            pid=process.pid,
            data_dir=data_dir,
            log=log,
        )
    finally:
        if process is not None:
            _stop(process, data_dir)
        if keep:
            print(f"kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


async def _wait_healthy(base_url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + STARTUP_S
    async with httpx.AsyncClient(base_url=base_url, timeout=5) as http:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"the server exited ({process.returncode}):\n{tail(log)}")
            with contextlib.suppress(httpx.TransportError):
                if (await http.get("/healthz")).status_code == 200:
                    return
            await asyncio.sleep(0.2)
    raise RuntimeError(f"the server did not answer /healthz within {STARTUP_S:.0f}s:\n{tail(log)}")


def _stop(process: subprocess.Popen[bytes], data_dir: Path) -> None:
    temporal = data_dir / "temporal.json"
    temporal_pid = json.loads(temporal.read_text())["pid"] if temporal.exists() else None
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)  # a clean stop also stops its embedded Temporal
        try:
            process.wait(timeout=STOP_S)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
    if temporal_pid is not None:  # the Temporal this server started, if it outlived it
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


def tail(log: Path, lines: int = 30) -> str:
    if not log.exists():
        return ""
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


def cpu_seconds(pid: int | None) -> float:
    """User + system CPU seconds a process (all its threads) has used so far; 0 if gone."""
    if pid is None:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def thread_cpu_seconds(pid: int) -> dict[str, float]:
    """CPU seconds of a process's main thread and of all its other threads (SQLite's included:
    aiosqlite runs it in a thread of its own)."""
    main, others = 0.0, 0.0
    ticks = os.sysconf("SC_CLK_TCK")
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(OSError):
                fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
                seconds = (int(fields[11]) + int(fields[12])) / ticks
                if int(task.name) == pid:
                    main += seconds
                else:
                    others += seconds
    return {"main_thread": main, "other_threads": others}
