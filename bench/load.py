"""The load: `concurrency` clients (one keep-alive `httpx.AsyncClient` each, in this process) send
pre-encoded bodies to `POST /api/alerts` as fast as they are answered; each request's latency is
from just before it is sent to its 202. A 429 is waited out (its Retry-After, capped) and sent
again, and counted; any other answer is a failure, counted with its first words."""

from __future__ import annotations

import asyncio
import json
import math
import time
from dataclasses import dataclass, field

import httpx

REQUEST_TIMEOUT_S = 30.0
MAX_ATTEMPTS = 50
RETRY_CAP_S = 2.0


@dataclass
class Outcome:
    latencies_s: list[float] = field(default_factory=list)
    accepted: int = 0
    duplicates: int = 0
    incidents: set[str] = field(default_factory=set)
    throttled: int = 0  # 429 answers (each retried)
    failures: list[str] = field(default_factory=list)
    wall_s: float = 0.0
    timed_out: bool = False


def percentile(values: list[float], q: float) -> float:
    """The nearest-rank percentile (q in 0..100); nan for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


async def drive(
    base_url: str, token: str, bodies: list[bytes], concurrency: int, deadline_s: float
) -> Outcome:
    """Send every body once (429s retried), `concurrency` at a time; stop at the deadline."""
    outcome = Outcome()
    pending = iter(bodies)
    deadline = time.monotonic() + deadline_s
    headers = {"authorization": f"Bearer {token}", "content-type": "application/json"}
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)

    async def client() -> None:
        async with httpx.AsyncClient(
            base_url=base_url, headers=headers, limits=limits, timeout=REQUEST_TIMEOUT_S
        ) as http:
            for body in pending:
                if time.monotonic() > deadline:
                    outcome.timed_out = True
                    return
                await _send(http, body, outcome, deadline)

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    outcome.wall_s = time.perf_counter() - started
    return outcome


async def _send(http: httpx.AsyncClient, body: bytes, outcome: Outcome, deadline: float) -> None:
    for _ in range(MAX_ATTEMPTS):
        sent = time.perf_counter()
        try:
            reply = await http.post("/api/alerts", content=body)
        except httpx.HTTPError as error:
            outcome.failures.append(f"{type(error).__name__}: {error}"[:200])
            return
        if reply.status_code == 202:
            outcome.latencies_s.append(time.perf_counter() - sent)
            answer = json.loads(reply.content)
            outcome.accepted += answer["accepted"] - answer["duplicates"]
            outcome.duplicates += answer["duplicates"]
            outcome.incidents.update(answer["incidents"])
            if answer["rejected"]:
                outcome.failures.append(f"202 with rejected records: {answer['rejected'][:1]}")
            return
        if reply.status_code != 429 or time.monotonic() > deadline:
            outcome.failures.append(f"{reply.status_code}: {reply.text[:200]}")
            return
        outcome.throttled += 1
        await asyncio.sleep(min(float(reply.headers.get("retry-after", "1")), RETRY_CAP_S))
    outcome.failures.append(f"still 429 after {MAX_ATTEMPTS} attempts")
