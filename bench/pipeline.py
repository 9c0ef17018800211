"""Issue 17's headline benchmark: the full pipeline against the bare-Temporal floor of an
incident's shape, on the same dev server, in the same run.

```sh
.venv/bin/python -m bench.pipeline           # sizes 10,25,50,all -> .garrison/bench-pipeline.json
.venv/bin/python -m bench.pipeline --sizes 10,25 --baseline old.json   # flags figures >20% worse
```

For each size N: N floor workflows (`bench/floor.py`), then the first N incidents of the committed
corpus through `garrison simulate`'s own runner (in-memory twins, the same concurrency), both on
one Temporal dev server started for the run. Figures per size: wall seconds, items/s, CPU seconds
per item of this process (client, workers, agents, store) and of the Temporal server, the
pipeline/floor throughput ratio (issue 17: at least 0.5, target 1.0), and the scorecard's headline
so a faster run that scores differently is visible. A script, not a test: it asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from temporalio.client import Client

from bench.floor import run_floor
from bench.report import REGRESSION, commit, machine
from bench.temporal_server import KillableTemporal
from orchestrator.settings import GarrisonSettings, TemporalSettings
from orchestrator.temporal.converter import DATA_CONVERTER
from simulations.loader import load_all
from simulations.runner import SimulationOptions, run_simulation

ROOT = Path(__file__).parents[1]
CORPUS = ROOT / "simulations" / "incidents"
TICKS = 100  # /proc clock ticks per second (Linux's USER_HZ)


@dataclass
class SizeFigures:
    size: int
    floor_wall_s: float
    floor_per_s: float
    floor_cpu_per_item_s: float  # this process + Temporal
    pipeline_wall_s: float
    pipeline_per_s: float
    pipeline_cpu_per_item_s: float
    pipeline_process_cpu_per_item_s: float
    pipeline_temporal_cpu_per_item_s: float
    ratio: float  # pipeline items/s / floor items/s
    verdict_accuracy: float
    containment_recall: float
    failed: int


def process_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def server_cpu(pid: int | None) -> float:
    """The Temporal server's CPU seconds (its process and reaped children), from /proc."""
    if pid is None:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return sum(int(f) for f in fields[11:15]) / TICKS  # utime stime cutime cstime


async def measure(sizes: list[int], concurrency: int) -> list[SizeFigures]:
    loaded = load_all([CORPUS])
    incidents = sorted(loaded.incidents, key=lambda i: i.spec.id)
    figures: list[SizeFigures] = []
    with tempfile.TemporaryDirectory(prefix="bench-pipeline-") as tmp:
        temporal = KillableTemporal(Path(tmp) / "temporal")
        await temporal.start()
        try:
            client = await Client.connect(temporal.address, data_converter=DATA_CONVERTER)
            pid = temporal.pid()
            for size in sizes:
                size = min(size, len(incidents))
                cpu, server = process_cpu(), server_cpu(pid)
                floor = await run_floor(client, size, concurrency)
                floor_cpu = process_cpu() - cpu + server_cpu(pid) - server
                settings = GarrisonSettings(
                    data_dir=Path(tmp) / f"data-{size}",
                    temporal=TemporalSettings(
                        address=temporal.address, task_queue_prefix=f"b{uuid.uuid4().hex[:6]}"
                    ),
                )
                cpu, server = process_cpu(), server_cpu(pid)
                started = time.perf_counter()
                card = await run_simulation(
                    incidents[:size], settings, SimulationOptions(concurrency=concurrency)
                )
                wall = time.perf_counter() - started
                own, temporal_cpu = process_cpu() - cpu, server_cpu(pid) - server
                per_s = size / wall
                figures.append(
                    SizeFigures(
                        size=size,
                        floor_wall_s=floor.wall_s,
                        floor_per_s=floor.per_s,
                        floor_cpu_per_item_s=round(floor_cpu / size, 4),
                        pipeline_wall_s=round(wall, 3),
                        pipeline_per_s=round(per_s, 3),
                        pipeline_cpu_per_item_s=round((own + temporal_cpu) / size, 4),
                        pipeline_process_cpu_per_item_s=round(own / size, 4),
                        pipeline_temporal_cpu_per_item_s=round(temporal_cpu / size, 4),
                        ratio=round(per_s / floor.per_s, 3),
                        verdict_accuracy=card.verdict_accuracy,
                        containment_recall=card.containment_recall,
                        failed=sum(1 for row in card.per_incident if row.error),
                    )
                )
                print(_row(figures[-1]), flush=True)
        finally:
            await temporal.stop()
    return figures


HIGHER_IS_BETTER = ("floor_per_s", "pipeline_per_s", "ratio")
LOWER_IS_BETTER = ("pipeline_cpu_per_item_s", "pipeline_wall_s")


def compare(now: list[dict[str, Any]], before: list[dict[str, Any]]) -> list[str]:
    old = {row["size"]: row for row in before}
    flagged: list[str] = []
    for row in now:
        base = old.get(row["size"])
        if base is None:
            continue
        for key in HIGHER_IS_BETTER + LOWER_IS_BETTER:
            a, b = base.get(key), row.get(key)
            if not isinstance(a, int | float) or not isinstance(b, int | float) or a == 0:
                continue
            change = (b - a) / a
            worse = -change if key in HIGHER_IS_BETTER else change
            if worse > REGRESSION:
                flagged.append(f"size {row['size']} {key}: {a} -> {b} ({change:+.0%})")
    return flagged


def _row(f: SizeFigures) -> str:
    return (
        f"size {f.size:>4}: floor {f.floor_per_s:6.2f}/s ({f.floor_cpu_per_item_s:.3f} cpu-s each)"
        f" | pipeline {f.pipeline_per_s:6.2f}/s ({f.pipeline_cpu_per_item_s:.3f} cpu-s each:"
        f" {f.pipeline_process_cpu_per_item_s:.3f} garrison"
        f" + {f.pipeline_temporal_cpu_per_item_s:.3f} temporal) | ratio {f.ratio:.2f}"
        f" | accuracy {f.verdict_accuracy:.3f}"
        f" recall {f.containment_recall:.3f} failed {f.failed}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="the pipeline against the bare-Temporal floor")
    parser.add_argument("--sizes", default="10,25,50,all", help="corpus sizes, 'all' for all")
    parser.add_argument("--concurrency", type=int, default=4, help="as garrison simulate's")
    parser.add_argument("--out", type=Path, default=ROOT / ".garrison" / "bench-pipeline.json")
    parser.add_argument("--baseline", type=Path, help="a previous --out: flag >20%% regressions")
    args = parser.parse_args(argv)
    sizes = [10_000 if s.strip() == "all" else int(s) for s in args.sizes.split(",")]
    document: dict[str, Any] = {
        "benchmark": "pipeline-vs-floor",
        "machine": machine(),
        "commit": commit(ROOT),
        "concurrency": args.concurrency,
    }
    figures = asyncio.run(measure(sizes, args.concurrency))
    document["sizes"] = [asdict(f) for f in figures]
    target = max(figures, key=lambda f: f.size)
    document["target"] = {
        "target": "pipeline at least 0.5x the floor's throughput (1.0x the aim)",
        "measured": target.ratio,
        "pass": target.ratio >= 0.5,
    }
    verdict = "PASS" if target.ratio >= 0.5 else "FAIL"
    print(f"{verdict}: ratio {target.ratio:.2f} at size {target.size}")
    if args.baseline is not None:
        flagged = compare(document["sizes"], json.loads(args.baseline.read_text())["sizes"])
        document["regressions"] = flagged
        for line in flagged:
            print("REGRESSION " + line)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
