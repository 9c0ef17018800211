"""A simulation's agents and actions roles in a process of their own, so that a simulation uses a
second core.

One Garrison worker process is bound by Python's one interpreter lock: a simulation of the corpus
keeps about one core busy, with the embedded Temporal on part of the other. `run_simulation`
therefore serves the `triage` role (the incident workflows, the store's bookkeeping, the tickets)
in its own process and starts this module as a second one for `agents` (the LangGraph graphs)
and `actions` (the side effects), as a deployment runs `garrison worker --queues agents,actions`
beside its server. Both go through `open_runtime` with the same settings (the parent's, pickled
through the pipe, with the embedded Temporal's address) on the same store and Temporal.

The twins stay consistent: the ones the agents read and the actions change (EDR, identity,
firewall, inventory, intel) live in this process, with one journal per incident, as in a single
process; the parent keeps only the ticketing twin, which no other role reads.

Protocol: the parent writes one pickled `RoleProcessSpec` (length-prefixed) to this process's
stdin and closes the pipe when the run is over; this process stops its workers then and exits 0.
The parent watches the exit: a process that dies mid-run ends the run with an error that says
so, instead of every incident waiting for its timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pickle
import struct
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from orchestrator.settings import GarrisonSettings
from orchestrator.temporal.client import Role
from simulations.loader import LoadedIncident

ROLES = (Role.AGENTS, Role.ACTIONS)
_LENGTH = struct.Struct(">Q")
STOP_TIMEOUT_S = 30.0  # a clean stop takes about a second; then the process is killed


@dataclass(frozen=True)
class RoleProcessSpec:
    settings: GarrisonSettings  # the parent's, with the embedded Temporal's address
    incidents: list[LoadedIncident]
    dry_run: bool


class RoleProcessDied(RuntimeError):
    """The agents and actions process exited before the run was over."""


@dataclass
class RoleProcess:
    process: asyncio.subprocess.Process
    exited: asyncio.Task[int]  # done when the process has exited, with its return code


@asynccontextmanager
async def role_process(spec: RoleProcessSpec) -> AsyncIterator[RoleProcess]:
    """Start the process, hand it `spec`, and stop it on exit (before the caller's runtime, and
    so the Temporal it connects to, closes)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "simulations.role_process",
        stdin=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert process.stdin is not None
    payload = pickle.dumps(spec, protocol=pickle.HIGHEST_PROTOCOL)
    process.stdin.write(_LENGTH.pack(len(payload)) + payload)
    await process.stdin.drain()
    exited = asyncio.create_task(process.wait(), name="garrison-role-process")
    try:
        yield RoleProcess(process, exited)
    finally:
        process.stdin.close()
        try:
            await asyncio.wait_for(asyncio.shield(exited), STOP_TIMEOUT_S)
        except TimeoutError:
            process.kill()
            await exited


async def _serve(spec: RoleProcessSpec) -> None:
    from orchestrator.runtime import open_runtime
    from simulations.routing import RecordedBackends

    async with open_runtime(
        spec.settings,
        RecordedBackends(spec.incidents),
        roles=ROLES,
        slack=False,
        dispatch=False,
        dry_run=spec.dry_run,
    ):
        # Until the parent closes the pipe (or dies, which closes it too).
        await asyncio.to_thread(sys.stdin.buffer.read)


def _read_spec() -> RoleProcessSpec:
    head = sys.stdin.buffer.read(_LENGTH.size)
    (length,) = _LENGTH.unpack(head)
    # The parent's own objects, through the pipe it opened: no one else writes there.
    spec = pickle.loads(sys.stdin.buffer.read(length))  # noqa: S301
    assert isinstance(spec, RoleProcessSpec)
    return spec


def main() -> None:
    from orchestrator.observability import logs

    spec = _read_spec()
    logs.protect(spec.settings)  # as every Garrison process logs (`settings_or_exit`)
    logs.configure(spec.settings.log_format, spec.settings.log_level.upper())
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C reaches the parent too, which stops
        asyncio.run(_serve(spec))


if __name__ == "__main__":
    # Through the module's own name: the pickled spec's class is `simulations.role_process`'s,
    # not this `__main__`'s copy of it.
    from simulations.role_process import main as role_process_main

    role_process_main()
