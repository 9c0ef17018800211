"""Helpers for tests that run real `garrison` processes and kill them."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable


def spawn_garrison(*args: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    """`garrison ARGS...` in its own process group (so a SIGKILL takes all of it)."""
    return subprocess.Popen(
        [sys.executable, "-m", "orchestrator.cli", *args], env=env, start_new_session=True
    )


def kill_group(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


def clean_environment() -> dict[str, str]:
    """This process's environment without a developer's own GARRISON_* settings."""
    return {k: v for k, v in os.environ.items() if not k.startswith("GARRISON_")}


async def wait_for(predicate: Callable[[], bool], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return
        await asyncio.sleep(0.1)
    raise AssertionError("condition not reached in time")
