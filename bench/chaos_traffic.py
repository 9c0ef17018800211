"""What the chaos run sends (`bench/chaos.py`): recorded incidents replayed through
`POST /api/alerts` at a steady pace, and the simulated on-call analysts approving every request
over `POST /api/approvals/{id}/decision`, both as a well-behaved client does while the server
behind them is being killed: a request that got no answer (a dropped connection, a 5xx, a 429) is
sent again, the same body, until it is answered. Ingestion deduplicates a re-sent alert by its
uid, so a retry after a commit whose 202 was lost is acknowledged as a duplicate, never stored
twice; a decision re-sent after one that landed is refused as already made (409).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from dataclasses import dataclass, field

import httpx

from simulations.analyst import PRIMARY_ANALYSTS
from simulations.loader import LoadedIncident
from tests.scenarios.alerts import AlertJson, recorded_replay
from tests.scenarios.load import uid_of

TIMEOUT_S = 60.0  # a decision waits for the workflow's Update, up to the service's timeout
RETRY_S = 1.0
POLL_S = 1.0


@dataclass(frozen=True)
class Replay:
    due_s: float  # seconds from the start of the run
    recording: str
    records: list[AlertJson]


def replays(
    recordings: list[LoadedIncident], minutes: float, per_minute: float, scope: str
) -> list[Replay]:
    """The recordings in turn, one replay every 60 / `per_minute` s for `minutes`, each a new
    incident (`recorded_replay`: fresh uids, correlated under `<scope>r<n>--<recorded id>`)."""
    every = 60.0 / per_minute
    count = int(minutes * 60 / every)
    return [
        Replay(
            n * every,
            recordings[n % len(recordings)].spec.id,
            recorded_replay(recordings[n % len(recordings)], f"{scope}r{n}"),
        )
        for n in range(count)
    ]


@dataclass
class Sent:
    """The sender's books."""

    uids: set[str] = field(default_factory=set)  # acknowledged (202)
    statuses: Counter[str] = field(default_factory=Counter)  # every answer, `transport` too
    retries: int = 0
    incidents: set[str] = field(default_factory=set)  # named in the 202s
    given_up: list[str] = field(default_factory=list)  # replays never acknowledged


def _client(base_url: str, token: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=base_url,
        headers={"authorization": f"Bearer {token}"},
        timeout=TIMEOUT_S,
        limits=httpx.Limits(keepalive_expiry=2.0),  # uvicorn closes idle connections at 5 s
    )


async def send_replays(
    base_url: str, token: str, planned: list[Replay], *, give_up_s: float = 600.0
) -> Sent:
    """Each replay at its due time, retried until answered 202 (or `give_up_s` passed)."""
    sent = Sent()
    started = time.monotonic()
    async with _client(base_url, token) as http:

        async def one(replay: Replay) -> None:
            await asyncio.sleep(max(0.0, started + replay.due_s - time.monotonic()))
            body = json.dumps(replay.records, separators=(",", ":"))
            deadline = time.monotonic() + give_up_s
            while time.monotonic() < deadline:
                try:
                    reply = await http.post(
                        "/api/alerts", content=body, headers={"content-type": "application/json"}
                    )
                except httpx.HTTPError:
                    sent.statuses["transport"] += 1
                else:
                    sent.statuses[str(reply.status_code)] += 1
                    if reply.status_code == 202:
                        sent.uids.update(uid_of(r) for r in replay.records)
                        sent.incidents.update(str(i) for i in reply.json().get("incidents", []))
                        return
                    if reply.status_code < 500 and reply.status_code != 429:
                        sent.given_up.append(f"{replay.recording}: {reply.status_code}")
                        return
                sent.retries += 1
                await asyncio.sleep(RETRY_S)
            sent.given_up.append(f"{replay.recording}: no 202 in {give_up_s:.0f}s")

        await asyncio.gather(*(one(r) for r in planned))
    return sent


@dataclass
class Desk:
    """Simulated analysts who approve every pending request of the run's incidents, with as many
    distinct people as it needs, each request in its own task (a decision may wait for the
    workflow's Update while no worker runs: the other requests are not held up behind it); each
    person's decision is re-sent until answered."""

    base_url: str
    analysts: dict[str, str]  # name -> token with the `approve` scope
    scope: str
    answered: dict[str, set[str]] = field(default_factory=dict)  # approval -> who is done
    answers: Counter[str] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)
    _busy: set[str] = field(default_factory=set)

    async def run(self) -> None:
        """Until cancelled."""
        clients = {who: _client(self.base_url, token) for who, token in self.analysts.items()}
        tasks: set[asyncio.Task[None]] = set()
        try:
            while True:
                for approval in await self._pending(clients[PRIMARY_ANALYSTS[0]]):
                    approval_id = str(approval["id"])
                    if approval_id in self._busy:
                        continue
                    self._busy.add(approval_id)
                    task = asyncio.create_task(self._approve(approval, clients))
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
                await asyncio.sleep(POLL_S)
        finally:
            for task in list(tasks):
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for http in clients.values():
                await http.aclose()

    async def _pending(self, http: httpx.AsyncClient) -> list[dict[str, object]]:
        try:
            reply = await http.get("/api/approvals", params={"status": "pending"})
        except httpx.HTTPError:
            self.answers["list:transport"] += 1
            return []
        if reply.status_code != 200:
            self.answers[f"list:{reply.status_code}"] += 1
            return []
        return [a for a in reply.json() if str(a["incident_id"]).startswith(f"{self.scope}-")]

    async def _approve(
        self, approval: dict[str, object], clients: dict[str, httpx.AsyncClient]
    ) -> None:
        approval_id = str(approval["id"])
        try:
            required = int(str(approval["required_approvers"]))
            await asyncio.gather(
                *(self._decide(approval, who, clients[who]) for who in PRIMARY_ANALYSTS[:required])
            )
        finally:
            self._busy.discard(approval_id)  # still pending: the next round tries who is left

    async def _decide(self, approval: dict[str, object], who: str, http: httpx.AsyncClient) -> None:
        approval_id = str(approval["id"])
        done = self.answered.setdefault(approval_id, set())
        if who in done:
            return
        body = {"decision": "approve", "action_hash": approval["action_hash"]}
        try:
            reply = await http.post(f"/api/approvals/{approval_id}/decision", json=body)
        except httpx.HTTPError:
            self.answers["transport"] += 1
            return  # the server is away: the next round sends it again
        self.answers[str(reply.status_code)] += 1
        if reply.status_code >= 500 or reply.status_code == 429:
            return
        done.add(who)
        if reply.status_code not in (200, 409):
            self.problems.append(f"{approval_id}: {who} -> {reply.status_code} {reply.text[:200]}")
