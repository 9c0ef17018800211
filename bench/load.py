"""The load: `concurrency` clients (each one keep-alive connection, in this process) send
pre-encoded bodies to `POST /api/alerts` as fast as they are answered; each request's latency is
from just before it is sent to its 202. A 429 is waited out (its Retry-After, capped) and sent
again, and counted; any other answer is a failure, counted with its first words.

The clients are `raw` by default: HTTP/1.1 written and read on an asyncio stream, about a tenth
of `httpx`'s CPU per request. On two cores shared by the clients, the server and Temporal, the
client's own cost is otherwise a large part of what is measured (a SIEM's forwarder is not a
Python HTTP library). `--client httpx` measures with `httpx.AsyncClient` for comparison."""

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


@dataclass(frozen=True)
class Reply:
    status_code: int
    content: bytes
    headers: dict[str, str]

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")


class RawClient:
    """One keep-alive HTTP/1.1 connection that POSTs JSON bodies and reads `Content-Length`
    answers (what uvicorn sends for a JSON response)."""

    def __init__(self, base_url: str, token: str) -> None:
        url = httpx.URL(base_url)
        self._host, self._port = url.host, url.port or 80
        self._head = (
            f"POST /api/alerts HTTP/1.1\r\nHost: {self._host}:{self._port}\r\n"
            f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
        ).encode()
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def post(self, body: bytes) -> Reply:
        if self._writer is None or self._reader is None:
            self._reader, self._writer = await asyncio.open_connection(self._host, self._port)
        self._writer.write(self._head + b"Content-Length: %d\r\n\r\n" % len(body) + body)
        status_line = await self._reader.readline()
        if not status_line:
            raise ConnectionError("the server closed the connection")
        headers: dict[str, str] = {}
        while (line := await self._reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        content = await self._reader.readexactly(int(headers.get("content-length", "0")))
        if headers.get("connection", "").lower() == "close":
            await self.aclose()
        return Reply(int(status_line.split()[1]), content, headers)

    async def aclose(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


async def drive(
    base_url: str,
    token: str,
    bodies: list[bytes],
    concurrency: int,
    deadline_s: float,
    client_kind: str = "raw",
) -> Outcome:
    """Send every body once (429s retried), `concurrency` at a time; stop at the deadline."""
    outcome = Outcome()
    pending = iter(bodies)
    deadline = time.monotonic() + deadline_s
    headers = {"authorization": f"Bearer {token}", "content-type": "application/json"}
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)

    async def raw_client() -> None:
        raw = RawClient(base_url, token)
        try:
            for body in pending:
                if time.monotonic() > deadline:
                    outcome.timed_out = True
                    return
                await _send(raw, body, outcome, deadline)
        finally:
            await raw.aclose()

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
    chosen = raw_client if client_kind == "raw" else client
    await asyncio.gather(*(chosen() for _ in range(concurrency)))
    outcome.wall_s = time.perf_counter() - started
    return outcome


async def _send(
    http: httpx.AsyncClient | RawClient, body: bytes, outcome: Outcome, deadline: float
) -> None:
    for _ in range(MAX_ATTEMPTS):
        sent = time.perf_counter()
        try:
            if isinstance(http, RawClient):
                reply: Reply | httpx.Response = await http.post(body)
            else:
                reply = await http.post("/api/alerts", content=body)
        except (httpx.HTTPError, OSError, ValueError, asyncio.IncompleteReadError) as error:
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
