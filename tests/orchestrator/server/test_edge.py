"""The HTTP edge over real HTTP on loopback, against a real store: bodies capped before anything
reads them or checks a token, ids and hashes refused with a 422 naming the field, every refusal
audited exactly once, and a client that goes away mid-body leaving an audit row, not a
traceback."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from orchestrator.approvals.directory import ApproverDirectory
from orchestrator.approvals.service import ApprovalService
from orchestrator.ingest.pipeline import Ingestor
from orchestrator.policy.model import IngestRules
from orchestrator.server.app import ServerDeps, SlackRuntime, create_app
from orchestrator.server.edge import EdgeGuard
from orchestrator.server.refusals import COLLAPSED, RefusalAudit
from orchestrator.server.tokens import ApiTokens, TokenEntry, digest
from orchestrator.slack.notifier import SlackNotifier
from orchestrator.slack.webapi import SlackWebClient
from orchestrator.store.records import AuditRecord
from orchestrator.store.repository import Store
from tools.emulators.serve import serve

TOKENS = {"alice": "tok-alice", "siem": "tok-siem"}
DECISION = "/api/approvals/apr-0123456789abcdef/decision"
HASH = "ab" * 32
EDGE_TYPES = ("http.request_refused", "slack.request_rejected")


@dataclass
class Edge:
    url: str
    http: httpx.AsyncClient
    store: Store
    deps: ServerDeps

    @property
    def address(self) -> tuple[str, int]:
        parts = urlsplit(self.url)
        return str(parts.hostname), int(parts.port or 80)

    async def rows(self) -> list[AuditRecord]:
        return await self.store.audit_entries()

    async def audited_refusals(self) -> int:
        """Refusals the log accounts for, after the refusal audit wrote its counts."""
        await self.deps.refusals.aclose()
        rows = await self.rows()
        own = sum(1 for r in rows if r.type in EDGE_TYPES or r.type.startswith("approval.d"))
        return own + sum(int(r.detail["count"] or 0) for r in rows if r.type == COLLAPSED)


def bearer(name: str) -> dict[str, str]:
    return {"authorization": f"Bearer {TOKENS[name]}"}


@pytest.fixture
async def edge(tmp_path: Path) -> AsyncIterator[Edge]:
    store = await Store.open(f"sqlite:///{tmp_path / 'g.db'}")
    directory = ApproverDirectory.model_validate({"groups": {"soc": {"members": ["alice"]}}})
    slack_client = SlackWebClient("http://127.0.0.1:9", "xoxb-unused")  # never called: unsigned
    ingest = Ingestor(store, IngestRules())
    deps = ServerDeps(
        store=store,
        # No Temporal: every decision here is refused by the service before it would reach one.
        approvals=ApprovalService(None, store, directory, "garrison-agent"),  # type: ignore[arg-type]
        tokens=ApiTokens(
            tokens={
                "alice": digest(TOKENS["alice"]),
                "siem": TokenEntry(digest=digest(TOKENS["siem"]), scopes=["ingest"]),
            }
        ),
        slack=SlackRuntime("a-signing-secret", SlackNotifier(slack_client, store, directory, "C0")),
        ingest=ingest,
    )
    async with serve(create_app(deps)) as url, httpx.AsyncClient(base_url=url) as http:
        yield Edge(url, http, store, deps)
    await deps.aclose()
    await ingest.aclose()
    await slack_client.aclose()
    await store.close()


async def send_raw(
    edge: Edge, head: str, *, chunk: bytes = b"", total: int = 0, chunked: bool = False
) -> tuple[bytes, int]:
    """Send a request head, then up to `total` body bytes in `chunk`s while no answer has come;
    the answer's first bytes and how many body bytes were sent before it."""
    reader, writer = await asyncio.open_connection(*edge.address)
    writer.write(head.encode())
    answer = asyncio.create_task(reader.read(4096))
    sent = 0
    try:
        while sent < total and not answer.done():
            framed = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n" if chunked else chunk
            writer.write(framed)
            await writer.drain()
            sent += len(chunk)
            # Paced, so that the server has read what was sent when it answers: closing on
            # unread data resets the connection, and the reset can swallow the answer.
            await asyncio.sleep(0.005)
    except (ConnectionResetError, BrokenPipeError):
        pass  # the server closed the connection after its answer
    data = await asyncio.wait_for(answer, 10)
    writer.close()
    return data, sent


async def test_a_declared_body_over_the_limit_is_refused_before_a_byte_is_read(edge: Edge) -> None:
    limits = {DECISION: 65_536, "/api/alerts": 1_048_576, "/slack/interactions": 262_144}
    for path, limit in limits.items():
        head = (
            f"POST {path} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
            f"content-length: {100 * 1024 * 1024}\r\n\r\n"
        )
        answer, sent = await send_raw(edge, head)  # no token, and not one byte of the body
        assert sent == 0
        assert answer.startswith(b"HTTP/1.1 413"), answer[:80]
        assert b"connection: close" in answer.lower()
        assert f"body larger than {limit} bytes".encode() in answer
    health = "GET /healthz HTTP/1.1\r\nhost: x\r\ncontent-length: 1000000\r\n\r\n"
    assert (await send_raw(edge, health))[0].startswith(b"HTTP/1.1 413")  # every route
    rows = await edge.rows()
    assert [(r.type, r.detail["status"]) for r in rows] == [
        ("http.request_refused", 413),  # the decision route (64 KB) and /api/alerts: one kind
        ("slack.request_rejected", 413),
    ]


async def test_a_chunked_body_is_cut_off_once_it_passes_the_limit(edge: Edge) -> None:
    head = (
        f"POST {DECISION} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
        "transfer-encoding: chunked\r\n\r\n"
    )
    total = 20 * 1024 * 1024
    answer, sent = await send_raw(edge, head, chunk=b"x" * 16_384, total=total, chunked=True)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:80]
    assert b"body larger than 65536 bytes" in answer
    assert sent < total / 2, sent  # answered long before the client finished sending
    [row] = await edge.rows()
    assert row.detail["status"] == 413 and row.actor == "unknown"


async def test_a_content_length_that_is_not_one_number_is_400_before_the_app_runs(
    tmp_path: Path,
) -> None:
    """At the ASGI level: uvicorn refuses most malformed lengths itself; the edge refuses what
    gets through (two different lengths, or a number too long to be a body)."""
    store = await Store.open(f"sqlite:///{tmp_path / 'g.db'}")
    ran: list[str] = []

    async def app(scope: object, receive: object, send: object) -> None:
        ran.append("app")

    guard = EdgeGuard(app, RefusalAudit(store))
    sent: list[dict[str, object]] = []

    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    for lengths in ([b"5", b"6"], [b"9" * 40], [b"-1"]):
        sent.clear()
        scope = {
            "type": "http",
            "method": "POST",
            "path": "/api/alerts",
            "headers": [(b"content-length", v) for v in lengths],
            "client": ("192.0.2.7", 5000),
        }
        await guard(scope, receive, send)  # type: ignore[arg-type]
        start, body = sent
        assert start["status"] == 400 and b"Content-Length" in body["body"]  # type: ignore[operator]
    assert ran == []
    await guard.refusals.aclose()
    rows = await store.audit_entries()
    assert [r.type for r in rows] == ["http.request_refused", COLLAPSED]
    assert rows[1].detail["count"] == 2
    await store.close()


async def test_ids_hashes_and_fields_out_of_bounds_are_a_422_naming_the_field(edge: Edge) -> None:
    alice = bearer("alice")
    good = {"decision": "approve", "action_hash": HASH}
    cases = [
        ("POST", "/api/approvals/" + "a" * 1025 + "/decision", good, "path.approval_id"),
        ("GET", "/api/approvals/" + "apr-" + "0" * 2000, None, "path.approval_id"),
        ("POST", DECISION, {**good, "action_hash": "ab" * 33}, "body.action_hash"),
        ("POST", DECISION, {**good, "action_hash": "x" * 60_000}, "body.action_hash"),
        ("POST", DECISION, {**good, "extra": 1}, "body.extra"),
        ("GET", "/api/incidents/" + "i" * 300, None, "path.incident_id"),
        ("GET", "/api/incidents/inc%00nul", None, "path.incident_id"),
        ("GET", "/api/incidents?limit=" + "9" * 5000, None, "query.limit"),
    ]
    for method, path, body, field in cases:
        answer = await edge.http.request(method, path, json=body, headers=alice)
        assert answer.status_code == 422, (path[:60], answer.text[:200])
        assert field in {p["field"] for p in answer.json()["detail"]}, answer.text[:300]
    webhook = await edge.http.post("/api/alerts/webhook/" + "S" * 100, content=b"{}")
    assert webhook.status_code == 422 and "path.source" in webhook.text
    assert await edge.audited_refusals() == len(cases) + 1


async def test_every_refusal_is_audited_once_and_the_services_own_not_twice(edge: Edge) -> None:
    http = edge.http
    answers = [
        await http.get("/api/incidents"),  # 401: no token
        await http.get("/api/incidents", headers={"authorization": "Bearer nope"}),  # 401
        await http.get("/api/incidents", headers=bearer("siem")),  # 403: ingest only
        await http.get("/api/incidents/inc-unknown", headers=bearer("alice")),  # 404
        await http.delete("/api/incidents", headers=bearer("alice")),  # 405
        await http.get("/api/nothing-here"),  # 404: no such route
        await http.post("/api/alerts", content=b"{not json", headers=bearer("siem")),  # 400
        await http.post("/slack/interactions", content=b"payload=x"),  # 401: unsigned
    ]
    statuses = [a.status_code for a in answers]
    assert statuses == [401, 401, 403, 404, 405, 404, 400, 401]
    decided = await http.post(
        DECISION, json={"decision": "approve", "action_hash": HASH}, headers=bearer("alice")
    )
    assert decided.status_code == 404  # unknown approval: the approval service refused it
    rows = await edge.rows()
    service = [r for r in rows if r.type == "approval.decision_refused"]
    assert [(r.target, r.actor) for r in service] == [("apr-0123456789abcdef", "alice")]
    assert not [r for r in rows if r.type in EDGE_TYPES and r.target == DECISION]
    forbidden = [r for r in rows if r.type == "http.request_refused" and r.detail["status"] == 403]
    assert forbidden[0].actor == "siem"  # the token's identity, once it is known
    assert await edge.audited_refusals() == len(answers) + 1


async def test_a_flood_of_unsigned_slack_requests_is_two_rows_not_two_hundred(edge: Edge) -> None:
    for _ in range(200):
        answer = await edge.http.post("/slack/interactions", content=b"payload=%7B%7D")
        assert answer.status_code == 401
    await edge.deps.refusals.aclose()
    rows = await edge.rows()
    assert [r.type for r in rows] == ["slack.request_rejected", COLLAPSED]
    assert rows[1].detail["count"] == 199 and rows[1].source == "channel:slack"


@pytest.mark.parametrize(
    ("path", "headers"),
    [
        (DECISION, "authorization: Bearer tok-alice\r\n"),  # FastAPI reads the body itself
        ("/api/alerts", "authorization: Bearer tok-siem\r\n"),  # the route reads it raw
        ("/slack/interactions", ""),
    ],
)
async def test_a_client_that_leaves_mid_body_is_audited_and_logs_no_error(
    edge: Edge, path: str, headers: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    reader, writer = await asyncio.open_connection(*edge.address)
    writer.write(
        f"POST {path} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n{headers}"
        'content-length: 10000\r\n\r\n{"decision": '.encode()
    )
    await writer.drain()
    await asyncio.sleep(0.2)  # the app is waiting for the rest of the body
    writer.close()
    for _ in range(100):
        rows = [r for r in await edge.rows() if r.detail.get("kind") == "client_disconnected"]
        if rows:
            break
        await asyncio.sleep(0.05)
    assert len(rows) == 1 and rows[0].target == path
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text
    assert await reader.read() == b""  # nothing was answered


async def test_an_integer_of_more_digits_than_python_converts_is_a_4xx_not_a_500(
    edge: Edge,
) -> None:
    """Python refuses to convert an integer literal of more than 4,300 digits (a ValueError,
    not a JSONDecodeError): every JSON route answers 4xx, audited; alerts are dead-lettered."""
    huge = b"1" * 5000
    for path, headers, body in (
        ("/api/alerts", bearer("siem"), huge),
        ("/api/alerts", bearer("siem"), b'{"uid": ' + huge + b"}"),
        (DECISION, bearer("alice"), b'{"decision": "approve", "action_hash": ' + huge + b"}"),
    ):
        answer = await edge.http.post(
            path, content=body, headers={**headers, "content-type": "application/json"}
        )
        assert 400 <= answer.status_code < 500, (path, answer.status_code, answer.text[:200])
    letters = await edge.store.intake.dead_letters()
    assert len(letters) == 2 and all("JSON" in letter.reason for letter in letters)
    assert await edge.audited_refusals() == 3
