"""Capture workflow histories for the replay tests (`tests/histories/*.json`).

Run after a change that is meant to be replay-compatible, never to paper over a failure: the
histories of the previous release are what a running deployment still holds.

    .venv/bin/python scripts/capture_histories.py [RELEASE]

With RELEASE the files are named `<incident>.<analyst>.<RELEASE>.json`, beside the older
releases' histories (keep those: they are what replay compatibility is checked against).
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import uuid
from pathlib import Path

from orchestrator.settings import GarrisonSettings, TemporalSettings
from orchestrator.temporal.client import temporal_client
from simulations.loader import load_all
from simulations.runner import SimulationOptions, run_simulation
from simulations.spec import AnalystPolicy

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "tests" / "histories"
# one benign incident among them; the histories already captured keep the ids of their day
PICK = ("otrf-lsass-procdump-acct01", "otrf-empire-smbexec-ws5-ws6", "otrf-dsc-mordordc-0722")


async def main() -> None:
    incidents = [i for i in load_all([ROOT / "simulations" / "incidents"]).incidents]
    chosen = [i for i in incidents if i.spec.id in PICK]
    with tempfile.TemporaryDirectory() as data:
        embedded = GarrisonSettings(data_dir=Path(data))
        async with temporal_client(embedded) as (client, server):
            assert server is not None
            for analyst in (AnalystPolicy.ORACLE, AnalystPolicy.ABSENT):
                prefix = f"capture-{uuid.uuid4().hex[:6]}"
                settings = GarrisonSettings(
                    data_dir=Path(data),
                    temporal=TemporalSettings(address=server.address, task_queue_prefix=prefix),
                )
                await run_simulation(chosen, settings, SimulationOptions(analyst=analyst))
                async for execution in client.list_workflows(f"TaskQueue = '{prefix}-triage'"):
                    handle = client.get_workflow_handle(execution.id, run_id=execution.run_id)
                    history = await handle.fetch_history()
                    name = execution.id.rsplit("--", 1)[-1]
                    release = f".{sys.argv[1]}" if len(sys.argv) > 1 else ""
                    path = OUT / f"{name}.{analyst.value}{release}.json"
                    path.write_text(history.to_json(), encoding="utf-8")
                    print(f"wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    asyncio.run(main())
