"""One side of a shadow run, in a process of its own: the agents build their knowledge tables
when imported, once per process, so the current version and the candidate cannot share one.

`python -m simulations.shadow.side --role R --run-id ID --out FILE PATH...` replays the recorded
incidents under PATH with side effects off (`SimulationOptions.dry_run`), then writes
`{"side": garrison.shadow-side/1, "scorecard": garrison.scorecard/1}` to FILE. Its knowledge,
settings and installed code are whatever its environment and interpreter say: `run.py` sets them.
A problem is one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

from orchestrator.settings import ConfigError, GarrisonSettings, load_settings
from simulations.loader import LoadedIncident, load_all
from simulations.replay import ReplayOutcome
from simulations.runner import SIM_PREFIX, SimulationOptions, run_simulation
from simulations.scorer import Scorecard
from simulations.shadow.records import Role, ShadowSide, shadow_incident
from simulations.spec import AnalystPolicy


async def run_side(
    incidents: list[LoadedIncident],
    settings: GarrisonSettings,
    role: Role,
    run_id: str,
    *,
    analyst: AnalystPolicy | None = None,
    concurrency: int = 4,
    overrides: dict[str, str] | None = None,
) -> tuple[ShadowSide, Scorecard]:
    """Replay `incidents` side effects off and read back what this side decided on each."""
    from agents.knowledge import KNOWLEDGE_VERSION  # this process's, as its agents decided
    from orchestrator.composition import open_store

    # Task queues of this side alone: a worker of the deployment on the configured Temporal
    # must never pick up the side's tasks (nor the side's dry-run workers the deployment's).
    settings = own_queues(settings, f"shadow-{run_id}")
    outcomes: list[ReplayOutcome] = []
    options = SimulationOptions(
        analyst=analyst, concurrency=concurrency, run_id=run_id, dry_run=True
    )
    started = time.perf_counter()
    card = await run_simulation(incidents, settings, options, progress=outcomes.append)
    elapsed = time.perf_counter() - started
    store = await open_store(settings)
    try:
        records = [
            await shadow_incident(
                store, o.recorded_id, f"{SIM_PREFIX}-{run_id}--{o.recorded_id}", o.result, o.error
            )
            for o in outcomes
        ]
    finally:
        await store.close()
    side = ShadowSide(
        role=role,
        run_id=run_id,
        knowledge_version=KNOWLEDGE_VERSION,
        knowledge_dir=str(settings.knowledge_dir) if settings.knowledge_dir else None,
        python=sys.executable,
        overrides=overrides or {},
        elapsed_s=round(elapsed, 3),
        incidents=sorted(records, key=lambda r: r.id),
    )
    return side, card


def own_queues(settings: GarrisonSettings, suffix: str) -> GarrisonSettings:
    """`settings` with task queues of their own: `<prefix>-<suffix>-<role>`."""
    prefix = f"{settings.temporal.task_queue_prefix}-{suffix}"
    temporal = settings.temporal.model_copy(update={"task_queue_prefix": prefix})
    return settings.model_copy(update={"temporal": temporal})


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="simulations.shadow.side")
    parser.add_argument("--role", choices=("current", "candidate"), required=True)
    parser.add_argument("--run-id", required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--analyst", choices=[p.value for p in AnalystPolicy])
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--override", action="append", default=[], help="NAME=VALUE, recorded")
    parser.add_argument("paths", type=Path, nargs="+")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    try:
        settings = load_settings()
    except ConfigError as error:
        print(f"error: {args.role}: {error}", file=sys.stderr)
        return 2
    loaded = load_all(args.paths)
    if loaded.problems or not loaded.incidents:
        problems = [str(p) for p in loaded.problems] or ["no recorded incidents found"]
        print(f"error: {args.role}: {'; '.join(problems)}", file=sys.stderr)
        return 2
    overrides = dict(item.split("=", 1) for item in args.override)
    try:
        side, card = asyncio.run(
            run_side(
                loaded.incidents,
                settings,
                args.role,
                args.run_id,
                analyst=AnalystPolicy(args.analyst) if args.analyst else None,
                concurrency=args.concurrency,
                overrides=overrides,
            )
        )
    except ConfigError as error:
        print(f"error: {args.role}: {error}", file=sys.stderr)
        return 2
    document = {"side": side.dump(), "scorecard": card.model_dump(mode="json", by_alias=True)}
    args.out.write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
