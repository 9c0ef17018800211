"""`POST /api/alerts` and signed webhooks over real HTTP on loopback, against a real store: what is
accepted is committed before the 202, every limit and every hostile body gets a 4xx naming the
problem (never a 5xx), and whatever was not accepted is in the dead-letter table."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from orchestrator.approvals.directory import ApproverDirectory
from orchestrator.approvals.service import ApprovalService
from orchestrator.ingest.pipeline import Ingestor
from orchestrator.ingest.sink import Accepted, Backpressure
from orchestrator.ingest.sources import IngestSources, signature
from orchestrator.policy.model import IngestRules
from orchestrator.server.app import ServerDeps, create_app
from orchestrator.server.tokens import ApiTokens, TokenEntry, digest
from orchestrator.store.repository import Store
from tools.emulators.serve import serve

SECRET = "a-webhook-secret-of-at-least-32-chars"
TOKENS = {"siem": "tok-siem", "alice": "tok-alice"}


def garrison_alert(uid: str, host: str = "WS01") -> dict[str, object]:
    return {
        "uid": uid,
        "time": "2026-12-01T09:00:00Z",
        "title": "Suspicious LSASS access",
        "severity": "high",
        "product": "test-edr",
        "rule": {"uid": "r-lsass", "name": "LSASS access"},
        "entities": {"host": host, "user": "CORP\\ann"},
    }


@dataclass
class Api:
    http: httpx.AsyncClient
    store: Store

    async def post(
        self, body: object | bytes, token: str = "tok-siem", **params: str
    ) -> httpx.Response:
        content = body if isinstance(body, bytes) else json.dumps(body).encode()
        return await self.http.post(
            "/api/alerts",
            content=content,
            params=params,
            headers={"authorization": f"Bearer {token}", "content-type": "application/json"},
        )

    async def dead_letters(self) -> list[str]:
        return [d.reason for d in await self.store.intake.dead_letters()]


class SlowSink:
    """A sink that is behind: every call is refused with Backpressure."""

    async def accept(self, items: object, *, scope: str | None = None) -> Accepted:
        raise Backpressure(7, "the test's queue is full")


async def _api(tmp_path: Path, sink: object | None = None) -> AsyncIterator[Api]:
    store = await Store.open(f"sqlite:///{tmp_path / 'g.db'}")
    tokens = ApiTokens(
        tokens={
            "siem": TokenEntry(digest=digest(TOKENS["siem"]), scopes=["ingest"]),
            "alice": digest(TOKENS["alice"]),
        }
    )
    deps = ServerDeps(
        store=store,
        approvals=ApprovalService(None, store, ApproverDirectory(groups={}), "garrison-agent"),  # type: ignore[arg-type]
        tokens=tokens,
        ingest=sink or Ingestor(store, IngestRules()),  # type: ignore[arg-type]
        sources=IngestSources.model_validate({"sources": {"dmz": {"secret": SECRET}}}),
    )
    async with serve(create_app(deps)) as url, httpx.AsyncClient(base_url=url) as http:
        yield Api(http, store)
    await store.close()


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    async for opened in _api(tmp_path):
        yield opened


async def test_a_batch_is_committed_before_the_202_and_a_resend_is_one_alert(api: Api) -> None:
    reply = await api.post([garrison_alert("a1"), garrison_alert("a2")])
    assert reply.status_code == 202, reply.text
    body = reply.json()
    assert body["accepted"] == 2 and len(body["incidents"]) == 1
    stored = await api.store.alerts_for(body["incidents"][0])
    assert [a.uid for a in stored] == ["a1", "a2"]
    again = (await api.post(garrison_alert("a1"))).json()
    assert again["duplicates"] == 1 and again["alert_ids"][0] == body["alert_ids"][0]
    original = await api.store.intake.original(body["alert_ids"][0])
    assert original is not None and json.loads(original[2])["uid"] == "a1"


async def test_tokens_need_the_ingest_scope(api: Api) -> None:
    assert (await api.post(garrison_alert("a1"), token="tok-alice")).status_code == 403
    assert (await api.post(garrison_alert("a1"), token="nope")).status_code == 401
    no_token = await api.http.post("/api/alerts", json=garrison_alert("a1"))
    assert no_token.status_code == 401
    reading = await api.http.get(
        "/api/incidents", headers={"authorization": f"Bearer {TOKENS['siem']}"}
    )
    assert reading.status_code == 403  # an ingest-only token reads and decides nothing
    assert await api.store.list_incidents() == []


@pytest.mark.parametrize(
    ("body", "status", "named"),
    [
        (b"\xff\xfe{not utf-8", 400, "not UTF-8"),
        (b'{"uid": "x", ', 400, "not JSON"),
        (b"[" * 65 + b"]" * 65, 422, "deeper than 64"),
        (json.dumps([garrison_alert(f"b{i}") for i in range(1_001)]).encode(), 413, "at most 1000"),
        (b'"just a string"', 422, ""),
        (json.dumps({"what": "is this"}).encode(), 422, "unknown alert shape"),
        (json.dumps({**garrison_alert("c1"), "time": "yesterday"}).encode(), 422, "time"),
    ],
)
async def test_hostile_bodies_get_a_4xx_naming_the_problem_and_are_dead_lettered(
    api: Api, body: bytes, status: int, named: str
) -> None:
    reply = await api.post(body)
    assert reply.status_code == status, reply.text
    assert named in reply.text
    assert len(await api.dead_letters()) == 1
    assert await api.store.list_incidents() == []


async def test_a_body_over_one_megabyte_is_refused_and_recorded(api: Api) -> None:
    huge = json.dumps([garrison_alert("a1")] + ["x" * 1024] * 1100).encode()
    reply = await api.post(huge)
    assert reply.status_code == 413 and "larger than" in reply.text
    assert await api.dead_letters() == ["body larger than 1048576 bytes"]


async def test_unknown_shape_parameter_is_a_422_naming_it(api: Api) -> None:
    reply = await api.post(garrison_alert("a1"), shape="qradar")
    assert reply.status_code == 422 and "shape" in reply.text


async def test_good_records_are_taken_and_bad_ones_listed_with_their_dead_letter(api: Api) -> None:
    bad = {**garrison_alert("x"), "severity": "apocalyptic"}
    reply = await api.post([garrison_alert("a1"), bad, garrison_alert("a3")])
    assert reply.status_code == 202
    body = reply.json()
    assert body["accepted"] == 2
    [rejected] = body["rejected"]
    assert rejected["index"] == 1 and "severity" in rejected["problem"]
    letter = await api.store.intake.dead_letter(rejected["dead_letter"])
    assert letter is not None and json.loads(letter.body)["severity"] == "apocalyptic"


async def test_a_sink_that_is_behind_answers_429_with_retry_after(tmp_path: Path) -> None:
    async for api in _api(tmp_path, SlowSink()):
        reply = await api.post(garrison_alert("a1"))
        assert reply.status_code == 429
        assert reply.headers["retry-after"] == "7"


def signed(body: bytes, *, skew_s: float = 0, secret: str = SECRET) -> dict[str, str]:
    stamp = str(int(time.time() + skew_s))
    return {
        "x-garrison-timestamp": stamp,
        "x-garrison-signature": signature(secret, stamp, body),
        "content-type": "application/json",
    }


async def test_signed_webhooks_are_taken_and_forged_or_replayed_ones_refused(api: Api) -> None:
    body = json.dumps(garrison_alert("w1")).encode()
    headers = signed(body)
    ok = await api.http.post("/api/alerts/webhook/dmz", content=body, headers=headers)
    assert ok.status_code == 202, ok.text
    replay = await api.http.post("/api/alerts/webhook/dmz", content=body, headers=headers)
    assert replay.status_code == 409 and "replay" in replay.text
    forged = signed(body, secret="another-secret-that-is-32-chars-long")
    refused = await api.http.post("/api/alerts/webhook/dmz", content=body, headers=forged)
    assert refused.status_code == 401 and "does not match" in refused.text
    stale = await api.http.post(
        "/api/alerts/webhook/dmz", content=body, headers=signed(body, skew_s=-600)
    )
    assert stale.status_code == 401 and "window" in stale.text
    tampered = body.replace(b"w1", b"w2")
    changed = await api.http.post("/api/alerts/webhook/dmz", content=tampered, headers=headers)
    assert changed.status_code == 401
    unknown = await api.http.post("/api/alerts/webhook/nope", content=body, headers=signed(body))
    assert unknown.status_code == 404
    incidents = await api.store.list_incidents()
    assert len(incidents) == 1
    assert [a.uid for a in await api.store.alerts_for(incidents[0].id)] == ["w1"]


async def test_no_hostile_body_gets_a_5xx(api: Api) -> None:
    bodies: list[bytes] = [
        b"",
        b"null",
        b"[]",
        b"[null, 1, true]",
        b'{"uid": ' + b'"' + b"\\u0000" * 10 + b'"}',
        json.dumps({"class_uid": 2004, "finding_info": "not an object"}).encode(),
        json.dumps({"resources": [{"composite_id": 7}]}).encode(),
        json.dumps({"value": [{"@odata.type": "#microsoft.graph.security.alert"}]}).encode(),
        json.dumps({"event_type": "alert", "alert": []}).encode(),
        json.dumps({**garrison_alert("x"), "uid": "u" * 5000}).encode(),
        json.dumps(datetime.now(UTC).isoformat()).encode(),
    ]
    for body in bodies:
        reply = await api.post(body)
        assert reply.status_code < 500, (body[:60], reply.text)
        assert reply.status_code in (202, 400, 413, 422), (body[:60], reply.status_code)
