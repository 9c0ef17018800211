"""What the server did with the alerts, seen from outside the requests: how long until every
committed alert was signalled to its workflow (the store's outbox, read-only), how many incidents
the API lists, how many workflows Temporal has."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

import httpx
from temporalio.client import Client

POLL_S = 0.25
STALL_S = 20.0  # no alert signalled for this long: the server is not dispatching


def unsignalled(data_dir: Path) -> int | None:
    """Alerts committed whose workflow is not yet signalled; None if the store is not there."""
    db = data_dir / "garrison.db"
    if not db.exists():
        return None
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
        return conn.execute(
            "select count(*) from alert_intake where signalled_at is null"
        ).fetchone()[0]


async def wait_signalled(data_dir: Path, deadline_s: float) -> tuple[float | None, int | None]:
    """(seconds until nothing is left unsignalled, or None if it stalled or ran out of time;
    what was left)."""
    started = time.perf_counter()
    deadline = time.monotonic() + deadline_s
    last, last_change = None, time.monotonic()
    while time.monotonic() < deadline:
        left = await asyncio.to_thread(unsignalled, data_dir)
        if left == 0:
            return time.perf_counter() - started, 0
        if left != last:
            last, last_change = left, time.monotonic()
        elif time.monotonic() - last_change > STALL_S:
            return None, left
        await asyncio.sleep(POLL_S)
    return None, last


async def deliveries(base_url: str) -> dict[str, int]:
    """The server's `garrison_alert_deliveries_total` by kind (`start`, `signal`) from
    `/metrics`; empty when it has none (another server, or one that counts nothing yet)."""
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:
        reply = await http.get("/metrics")
    if reply.status_code != 200:
        return {}
    found: dict[str, int] = {}
    for line in reply.text.splitlines():
        if line.startswith("garrison_alert_deliveries_total{"):
            labels, _, value = line.rpartition(" ")
            kind = labels.partition('kind="')[2].partition('"')[0]
            found[kind] = int(float(value))
    return found


async def listed_incidents(base_url: str, token: str) -> list[str]:
    """Incident ids `GET /api/incidents` lists (at most 500, its limit)."""
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:
        reply = await http.get(
            "/api/incidents", params={"limit": 500}, headers={"authorization": f"Bearer {token}"}
        )
        reply.raise_for_status()
        return [i["id"] for i in reply.json()]


async def workflow_count(address: str, deadline_s: float = 30.0) -> int | None:
    """Temporal's workflow count, once it stops changing (visibility lags); None if unreachable."""
    try:
        client = await asyncio.wait_for(Client.connect(address), timeout=10)
    except (TimeoutError, RuntimeError, OSError):
        return None
    deadline = time.monotonic() + deadline_s
    last: int | None = None
    stable = 0
    while time.monotonic() < deadline:
        count = (await client.count_workflows()).count
        stable = stable + 1 if count == last else 0
        if stable >= 4:
            break
        last = count
        await asyncio.sleep(0.5)
    return last
