"""The scenarios' load driver: send batches of alerts to `POST /api/alerts` over loopback HTTP,
paced at a rate or as fast as answered, and keep the sender's side of the books (`Acks`): which
alert uids were acknowledged (202), how many of them the server counted as new and as duplicates,
every status and latency, and the incidents named in the answers.

A 429 is either the end of the send (`on_429="stop"`: the scenario wants to see the bound) or
waited out for its Retry-After and sent again (`"retry"`: a well-behaved sender)."""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import httpx

from tests.scenarios.alerts import AlertJson

RETRY_CAP_S = 5.0
TIMEOUT_S = 60.0


@dataclass
class Acks:
    statuses: Counter[int] = field(default_factory=Counter)
    uids: set[str] = field(default_factory=set)  # uids of records answered 202
    new: int = 0  # records the server stored (accepted - duplicates)
    duplicates: int = 0  # records it recognised as already stored
    sent_records: int = 0  # records in requests answered 202
    incidents: set[str] = field(default_factory=set)
    first_ack: dict[str, float] = field(default_factory=dict)  # incident -> first sent (epoch)
    latencies_s: list[float] = field(default_factory=list)  # 202s only
    retry_after: list[str] = field(default_factory=list)  # Retry-After of every 429
    failures: list[str] = field(default_factory=list)  # transport errors, unexpected answers
    refused_batches: list[list[AlertJson]] = field(default_factory=list)  # 429, not retried

    def merge(self, other: Acks) -> None:
        self.statuses.update(other.statuses)
        self.uids |= other.uids
        self.new += other.new
        self.duplicates += other.duplicates
        self.sent_records += other.sent_records
        self.incidents |= other.incidents
        for incident, at in other.first_ack.items():
            self.first_ack[incident] = min(at, self.first_ack.get(incident, at))
        self.latencies_s += other.latencies_s
        self.retry_after += other.retry_after
        self.failures += other.failures
        self.refused_batches += other.refused_batches

    @property
    def server_errors(self) -> int:
        return sum(n for status, n in self.statuses.items() if status >= 500)


def uid_of(record: AlertJson) -> str:
    """The alert uid of a Garrison alert or an OCSF finding."""
    info = record.get("finding_info")
    if isinstance(info, dict):
        return str(info["uid"])
    return str(record["uid"])


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100); nan for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def batches(records: Sequence[AlertJson], size: int) -> list[list[AlertJson]]:
    return [list(records[i : i + size]) for i in range(0, len(records), size)]


async def send(
    base_url: str,
    token: str,
    requests: Sequence[list[AlertJson]],
    *,
    rate_per_s: float | None = None,
    due_s: Sequence[float] | None = None,
    concurrency: int = 4,
    on_429: Literal["stop", "retry"] = "retry",
) -> Acks:
    """Send each batch once (429s per `on_429`), `concurrency` at a time; with `rate_per_s`, the
    batch holding the n-th alert is not sent before n / rate seconds; with `due_s` (ascending),
    the i-th batch not before `due_s[i]` seconds from now."""
    acks = Acks()
    queue: asyncio.Queue[tuple[float, list[AlertJson]]] = asyncio.Queue()
    offset = 0
    for index, batch in enumerate(requests):
        due = offset / rate_per_s if rate_per_s else 0.0
        queue.put_nowait((due_s[index] if due_s is not None else due, batch))
        offset += len(batch)
    stopped = asyncio.Event()
    started = time.monotonic()

    async def client() -> None:
        async with httpx.AsyncClient(
            base_url=base_url,
            headers={"authorization": f"Bearer {token}"},
            timeout=TIMEOUT_S,
            limits=httpx.Limits(keepalive_expiry=2.0),
        ) as http:
            while not queue.empty():
                due, batch = queue.get_nowait()
                if stopped.is_set():
                    acks.refused_batches.append(batch)
                    continue
                await asyncio.sleep(max(0.0, started + due - time.monotonic()))
                await _post(http, batch, acks, on_429, stopped)

    await asyncio.gather(*(client() for _ in range(concurrency)))
    return acks


async def _post(
    http: httpx.AsyncClient,
    batch: list[AlertJson],
    acks: Acks,
    on_429: Literal["stop", "retry"],
    stopped: asyncio.Event,
) -> None:
    body = json.dumps(batch if len(batch) > 1 else batch[0], separators=(",", ":"))
    while True:
        sent, sent_wall = time.perf_counter(), time.time()
        try:
            reply = await http.post(
                "/api/alerts", content=body, headers={"content-type": "application/json"}
            )
        except httpx.HTTPError as error:
            acks.failures.append(f"{type(error).__name__}: {error}"[:200])
            return
        acks.statuses[reply.status_code] += 1
        if reply.status_code == 202:
            acks.latencies_s.append(time.perf_counter() - sent)
            _count(acks, batch, reply.json(), sent_wall)
            return
        if reply.status_code != 429:
            acks.failures.append(f"{reply.status_code}: {reply.text[:200]}")
            return
        acks.retry_after.append(reply.headers.get("retry-after", ""))
        if on_429 == "stop":
            stopped.set()
            acks.refused_batches.append(batch)
            return
        await asyncio.sleep(min(float(reply.headers.get("retry-after") or 1), RETRY_CAP_S))


def _count(acks: Acks, batch: list[AlertJson], answer: dict[str, object], sent: float) -> None:
    accepted, duplicates = int(str(answer["accepted"])), int(str(answer["duplicates"]))
    if answer.get("rejected"):
        acks.failures.append(f"202 with rejected records: {str(answer['rejected'])[:200]}")
    acks.sent_records += len(batch)
    acks.new += accepted - duplicates
    acks.duplicates += duplicates
    acks.uids.update(uid_of(record) for record in batch)
    incidents = answer.get("incidents")
    for incident in incidents if isinstance(incidents, list) else []:
        acks.incidents.add(str(incident))
        acks.first_ack.setdefault(str(incident), sent)
