"""A scenario's worker process: `python -m tests.scenarios.worker --world W --journal-dir J
[--incidents PATH...] [--queues triage,agents,actions]`.

The same runtime as `garrison worker` (`orchestrator.runtime.open_runtime`: settings from the
environment, the store, Temporal, every activity and workflow of the roles asked for, and the
dispatcher when it runs the triage role); only its backends are the scenario's journaled twins
(`backends.py`), which serve incidents of live grouping as well as recorded ones. A real process,
so that scenarios can SIGKILL it. Prints `worker ready` once its workers poll.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from pathlib import Path

from orchestrator.runtime import open_runtime
from orchestrator.settings import ConfigError, load_settings
from orchestrator.temporal.client import Role
from simulations.loader import load_all
from tests.scenarios.backends import ScenarioBackends
from tools.models import Environment


async def serve(roles: list[Role], backends: ScenarioBackends) -> None:
    settings = load_settings()
    async with open_runtime(settings, backends, roles=roles, dispatch=Role.TRIAGE in roles):
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        print(f"worker ready: {', '.join(r.value for r in roles)}", flush=True)
        await stop.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.scenarios.worker")
    parser.add_argument("--queues", default="triage,agents,actions")
    parser.add_argument("--world", type=Path, required=True, help="Environment JSON")
    parser.add_argument("--journal-dir", type=Path, required=True)
    parser.add_argument("--incidents", type=Path, nargs="*", default=[])
    args = parser.parse_args(argv)
    roles = [Role(q.strip()) for q in args.queues.split(",") if q.strip()]
    loaded = load_all(args.incidents) if args.incidents else None
    if loaded is not None and loaded.problems:
        print("; ".join(str(p) for p in loaded.problems), file=sys.stderr)
        return 2
    world = Environment.model_validate_json(args.world.read_text(encoding="utf-8"))
    args.journal_dir.mkdir(parents=True, exist_ok=True)
    backends = ScenarioBackends(world, loaded.incidents if loaded else [], args.journal_dir)
    try:
        asyncio.run(serve(roles, backends))
    except ConfigError as error:
        print(error, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
