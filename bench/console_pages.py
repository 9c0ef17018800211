"""The console's pages with 10,000 incidents in the store: p50/p95/max latency per page.

    .venv/bin/python -m bench.console_pages                  # writes .garrison/bench-console.json
    .venv/bin/python -m bench.console_pages --incidents 2000 --requests 50   # a quick look

A SQLite store in a temporary directory gets `--incidents` incidents (bulk-inserted rows spread
over 30 days, every severity, verdict and category), of which `--full` also have alerts, a
triage, an approval waiting and their audit entries (through the store's own methods), and 50
kept simulation runs (the committed corpus baseline's scorecard each); the incident page reads
the playbook's checkpoints as `garrison server` does. The app of
`garrison server` (no workers, no Temporal: pages only read the store) is served by uvicorn on a
loopback port; one signed-in httpx client asks each page `--requests` times, one at a time. The
target: p95 under 200 ms for every page. Not a test: it prints and writes figures only."""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import random
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from sqlalchemy import insert

from orchestrator.approvals.service import ApprovalService
from orchestrator.console.auth import DEFAULT_BASELINES, ConsoleConfig
from orchestrator.console.playbook_progress import ProgressReader
from orchestrator.server.app import ServerDeps, create_app
from orchestrator.server.tokens import ApiTokens
from orchestrator.store.repository import Store
from orchestrator.store.tables import IncidentRow
from tests.orchestrator.console.seed import DIRECTORY, passwords, seed_incident, sign_in
from tools.emulators.serve import serve
from tools.models import Category, IncidentStatus, Severity, Verdict

TARGET_P95_MS = 200.0


async def fill(store: Store, count: int, full: int) -> list[str]:
    now = datetime.now(UTC)
    rng = random.Random(13)
    rows = [
        {
            "id": f"bench-{n:05d}",
            "group_key": f"g-bench-{n:05d}",
            "title": f"Suspicious activity {n} on WS-{n % 500}",
            "status": rng.choice(list(IncidentStatus)).value,
            "verdict": rng.choice(list(Verdict)).value,
            "severity": rng.choice(list(Severity)).value,
            "category": rng.choice(list(Category)).value,
            "confidence": 0.8,
            "opened_at": now - timedelta(minutes=rng.randint(0, 30 * 24 * 60)),
        }
        for n in range(count - full)
    ]
    async with store.engine.begin() as connection:
        for start in range(0, len(rows), 1_000):
            await connection.execute(insert(IncidentRow), rows[start : start + 1_000])
    ids = []
    for n in range(full):
        incident_id = f"full-{n:04d}"
        await seed_incident(store, incident_id, opened=now - timedelta(minutes=n))
        ids.append(incident_id)
    return ids


async def keep_runs(store: Store, count: int) -> list[str]:
    """`count` kept simulation runs, each the committed corpus baseline's scorecard."""
    report = json.loads((DEFAULT_BASELINES / "corpus.json").read_text(encoding="utf-8"))
    now = datetime.now(UTC)
    ids = [f"run{n:04d}" for n in range(count)]
    for n, run_id in enumerate(ids):
        await store.simulation_runs.keep(run_id, now - timedelta(hours=n), "bench", report)
    return ids


async def measure(http: httpx.AsyncClient, paths: list[str]) -> dict[str, float]:
    took = []
    for path in paths:
        start = time.perf_counter()
        answer = await http.get(path)
        took.append((time.perf_counter() - start) * 1000)
        assert answer.status_code == 200, (path, answer.status_code)
    took.sort()
    return {
        "requests": len(took),
        "p50_ms": round(statistics.median(took), 1),
        "p95_ms": round(took[int(len(took) * 0.95) - 1], 1),
        "max_ms": round(took[-1], 1),
    }


async def run(incidents: int, full: int, requests: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        store = await Store.open(f"sqlite:///{tmp / 'g.db'}")
        started = time.perf_counter()
        ids = await fill(store, incidents, full)
        runs = await keep_runs(store, 50)
        filled_s = time.perf_counter() - started
        deps = ServerDeps(
            store=store,
            approvals=ApprovalService(None, store, DIRECTORY, "garrison-agent"),
            tokens=ApiTokens(),
            console=ConsoleConfig(
                passwords_file=passwords(tmp / "console-passwords.yaml", "alice"),
                cookie_secure=False,
                progress=ProgressReader(f"sqlite:///{tmp / 'g.db'}"),  # as the server reads it
            ),
        )
        rng = random.Random(7)
        pages = {
            "incidents list": ["/console/incidents"] * requests,
            "incidents list, filtered": [
                rng.choice(
                    [
                        "/console/incidents?severity=high",
                        "/console/incidents?status=open&age=24h",
                        "/console/incidents?verdict=malicious&category=execution",
                        "/console/incidents?age=7d",
                    ]
                )
                for _ in range(requests)
            ],
            "incident page": [f"/console/incidents/{rng.choice(ids)}" for _ in range(requests)],
            "approvals queue": ["/console/approvals"] * requests,
            "simulation runs": ["/console/simulations"] * requests,
            "simulation run": [f"/console/simulations/{rng.choice(runs)}" for _ in range(requests)],
            "simulation diff": [
                f"/console/simulations/{rng.choice(runs)}/diff?against=baseline:corpus.json"
                for _ in range(requests)
            ],
        }
        figures: dict[str, object] = {}
        async with serve(create_app(deps)) as url, httpx.AsyncClient(base_url=url) as http:
            await sign_in(http, "alice")
            for name, paths in pages.items():
                await measure(http, paths[:5])  # warm-up
                measure_result = await measure(http, paths)
                verdict = "PASS" if measure_result["p95_ms"] < TARGET_P95_MS else "FAIL"
                figures[name] = {**measure_result, "target": verdict}
                print(
                    f"{name:26} p50 {measure_result['p50_ms']:7.1f} ms  p95"
                    f" {measure_result['p95_ms']:7.1f} ms  max {measure_result['max_ms']:7.1f} ms"
                    f"  ({measure_result['requests']} requests)  {verdict}"
                )
        await deps.aclose()
        await store.close()
    return {
        "incidents": incidents,
        "full_incidents": full,
        "pending_approvals": full,
        "fill_s": round(filled_s, 1),
        "pages": figures,
        "target_p95_ms": TARGET_P95_MS,
        "machine": platform.platform(),
        "python": platform.python_version(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--incidents", type=int, default=10_000)
    parser.add_argument("--full", type=int, default=200, help="incidents with alerts, approvals")
    parser.add_argument("--requests", type=int, default=200, help="per page")
    parser.add_argument("--out", type=Path, default=Path(".garrison/bench-console.json"))
    args = parser.parse_args()
    report = asyncio.run(run(args.incidents, args.full, args.requests))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2), encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
