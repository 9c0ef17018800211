"""A Temporal dev server of the scenario scripts' own (the embedded one Garrison starts, on free
loopback ports, state in a folder), which a script can SIGKILL and start again on the same file
and port: a crash of the cluster, as LD3 injects it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import time
from pathlib import Path

from orchestrator.temporal.embedded import EmbeddedTemporal
from tests.simulations.live_stack import free_port

STARTUP_S = 120.0


class KillableTemporal:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.ui_port = free_port()
        self._server: EmbeddedTemporal | None = None
        self.kills: list[tuple[float, float]] = []  # (killed at, answering again at), epoch s

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def pid(self) -> int | None:
        state = self.folder / "temporal.json"
        with contextlib.suppress(OSError, ValueError, KeyError):
            return int(json.loads(state.read_text())["pid"])
        return None

    async def start(self) -> None:
        server = EmbeddedTemporal(
            self.folder, port=self.port, ui_port=self.ui_port, startup_timeout=STARTUP_S
        )
        self._server = await server.start()

    async def kill_and_restart(self, down_s: float = 0.0) -> float:
        """SIGKILL the server's process group, wait `down_s`, start it again on the same
        database file and port; the seconds it was gone."""
        killed = time.time()
        pid = self.pid()
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
        if self._server is not None:
            await self._server.stop()  # reaps the killed process; nothing left to stop
        await asyncio.sleep(down_s)
        await self.start()
        self.kills.append((killed, time.time()))
        return time.time() - killed

    async def stop(self) -> None:
        if self._server is not None:
            await self._server.stop()
