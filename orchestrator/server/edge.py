"""The HTTP edge: a body cap on every route and the audit of every refused request, as one pure
ASGI middleware in front of the app (no `BaseHTTPMiddleware`, which buffers and hides
disconnects).

Body cap, before anything parses the body or checks a token: a declared `Content-Length` over the
route's limit is answered 413 at once, without reading a byte of the body, and the connection is
closed; a body without one (chunked) is counted as it streams and refused with 413 as soon as it
passes the limit; a `Content-Length` that is not one decimal number is 400. Limits: 1 MB for
`/api/alerts` (`orchestrator.ingest.limits`) and `/taxii2/`, 256 KB for `/slack/`
(`orchestrator.server.limits`), 64 KB for every other route.

Refusals: every 4xx on `/api` or `/slack` is audited once through `RefusalAudit` (rate-limited per
kind and client address), as `slack.request_rejected` on `/slack` and `http.request_refused`
on `/api`, with the reason the client was given. A route that audited its refusal itself (the
approval service writes `approval.decision_refused`) marks the request with `mark_audited`, and
the edge then writes nothing more. A client that goes away in the middle of its body
(`ClientDisconnect`) is audited as `client_disconnected` and answered nothing: there is nobody to
answer, and it is no server error.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from orchestrator.ingest.limits import MAX_BODY_BYTES as ALERTS_MAX_BODY_BYTES
from orchestrator.server.limits import MAX_BODY_BYTES as SLACK_MAX_BODY_BYTES
from orchestrator.server.refusals import Refusal, RefusalAudit

API_MAX_BODY_BYTES = 64 * 1024
TAXII_MAX_BODY_BYTES = 1024 * 1024  # a TAXII envelope: the API root's `max_content_length`
API_REFUSED = "http.request_refused"
SLACK_REJECTED = "slack.request_rejected"
DISCONNECTED = "client_disconnected"
_AUDITED = "garrison.refusal_audited"
_CALLER = "garrison.caller"
_MAX_DIGITS = 15  # a Content-Length of more digits is no body this server could take anyway
_CLOSE = [(b"content-type", b"application/json"), (b"connection", b"close")]

OnTooLarge = Callable[[Scope], Awaitable[None]]


class BodyTooLarge(HTTPException):
    """Raised from `receive` once a streamed body passes the route's limit."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"body larger than {limit} bytes", {"connection": "close"})


@dataclass(frozen=True)
class BodyLimits:
    default: int = API_MAX_BODY_BYTES
    prefixes: tuple[tuple[str, int], ...] = (
        ("/api/alerts", ALERTS_MAX_BODY_BYTES),
        ("/slack/", SLACK_MAX_BODY_BYTES),
        ("/taxii2/", TAXII_MAX_BODY_BYTES),
    )

    def for_path(self, path: str) -> int:
        for prefix, limit in self.prefixes:
            if path == prefix.rstrip("/") or path.startswith(prefix.rstrip("/") + "/"):
                return limit
        return self.default


def mark_audited(request: Request) -> None:
    """This request's refusal is in the audit log already (its route wrote it)."""
    request.scope.setdefault("state", {})[_AUDITED] = True


def note_caller(request: Request, identity: str) -> None:
    """Who the caller proved to be (its token's identity): the actor of a later refusal."""
    request.scope.setdefault("state", {})[_CALLER] = identity


class EdgeGuard:
    """The pure ASGI middleware; `on_too_large` runs when a declared length is refused (the
    alerts route keeps a dead letter for an authenticated sender)."""

    def __init__(
        self,
        app: ASGIApp,
        refusals: RefusalAudit,
        limits: BodyLimits | None = None,
        on_too_large: OnTooLarge | None = None,
    ) -> None:
        self.app = app
        self.refusals = refusals
        self.limits = limits or BodyLimits()
        self.on_too_large = on_too_large

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        exchange = _Exchange(self, scope, receive, send, self.limits.for_path(scope["path"]))
        await exchange.run()


@dataclass
class _Exchange:
    """One request/response through the edge."""

    guard: EdgeGuard
    scope: Scope
    receive_raw: Receive
    send_raw: Send
    limit: int
    received: int = 0
    too_large: bool = False
    disconnected: bool = False
    started: bool = False
    replaced: bool = False  # the edge answered itself; whatever the app sends is dropped
    held: Message | None = None  # a refusal's response start, sent once it is audited
    audited: bool = False
    headers: dict[bytes, list[bytes]] = field(default_factory=dict)

    async def run(self) -> None:
        for name, value in self.scope.get("headers", []):
            self.headers.setdefault(name.lower(), []).append(value)
        declared = self._declared_length()
        if declared == -1:
            await self._answer(400, "Content-Length is not one decimal number")
            return
        if declared is not None and declared > self.limit:
            if self.guard.on_too_large is not None:
                await self.guard.on_too_large(self.scope)
            await self._answer(413, f"body larger than {self.limit} bytes")
            return
        try:
            await self.guard.app(self.scope, self.receive, self.send)
        except BodyTooLarge as error:
            if self.started:
                raise
            await self._answer(413, str(error.detail))
        except ClientDisconnect:
            self.disconnected = True
        if self.disconnected and not self.audited:
            reason = "the client went away before its body was received"
            await self._audit(400, reason, kind=DISCONNECTED)
        elif self.too_large and not self.started:
            await self._answer(413, f"body larger than {self.limit} bytes")

    def _declared_length(self) -> int | None:
        """The declared body length, None when there is none, -1 when it is not a number."""
        values = self.headers.get(b"content-length")
        if not values:
            return None
        if len(set(values)) != 1:
            return -1
        text = values[0].strip()
        if not text.isdigit() or len(text) > _MAX_DIGITS:
            return -1
        return int(text)

    async def receive(self) -> Message:
        message = await self.receive_raw()
        if message["type"] == "http.disconnect" and not self.started:
            self.disconnected = True
        elif message["type"] == "http.request":
            self.received += len(message.get("body", b""))
            if self.received > self.limit:
                self.too_large = True
                raise BodyTooLarge(self.limit)
        return message

    async def send(self, message: Message) -> None:
        if self.disconnected or self.replaced:
            return  # nobody is listening (audited when the app returns), or the 413 went out
        if message["type"] == "http.response.start":
            if self.too_large:  # whatever the app made of the cut body, the answer is 413
                await self._answer(413, f"body larger than {self.limit} bytes")
                return
            if self._audits(message["status"]):
                self.held = message
                return
            self.started = True
            await self.send_raw(message)
            return
        if self.held is not None:
            start, self.held = self.held, None
            await self._audit(start["status"], _reason(message.get("body", b"")))
            self.started = True
            await self.send_raw(start)
        await self.send_raw(message)

    def _audits(self, status: int) -> bool:
        return 400 <= status < 500 and channel_of(self.scope["path"]) is not None

    async def _answer(self, status: int, reason: str) -> None:
        """The edge's own answer (the app did not run, or its answer is replaced)."""
        if self.started:
            return
        self.started = self.replaced = True
        await self._audit(status, reason)
        body = json.dumps({"detail": reason}).encode()
        headers = [*_CLOSE, (b"content-length", str(len(body)).encode())]
        await self.send_raw({"type": "http.response.start", "status": status, "headers": headers})
        await self.send_raw({"type": "http.response.body", "body": body})

    async def _audit(self, status: int, reason: str, kind: str | None = None) -> None:
        if self.audited:
            return
        self.audited = True
        channel = channel_of(self.scope["path"])
        state: dict[str, Any] = self.scope.get("state") or {}
        if channel is None or state.get(_AUDITED):
            return
        client = self.scope.get("client")
        await self.guard.refusals.record(
            Refusal(
                type=SLACK_REJECTED if channel == "slack" else API_REFUSED,
                kind=kind or str(status),
                status=status,
                source=str(client[0]) if client else "unknown",
                channel=channel,
                actor=str(state.get(_CALLER) or "unknown"),
                method=str(self.scope.get("method", "")),
                path=str(self.scope["path"]),
                reason=reason,
            )
        )


def channel_of(path: str) -> str | None:
    """`api` or `slack`: the paths whose refusals are audited; None for the rest. The TAXII
    server's (`/taxii2/`) are the API's."""
    if path == "/api" or path.startswith(("/api/", "/taxii2")):
        return "api"
    if path == "/slack" or path.startswith("/slack/"):
        return "slack"
    return None


def _reason(body: bytes) -> str:
    """What the refusal told the client: its `detail`, field problems joined."""
    try:
        answer = json.loads(body[:4096])
        detail = answer.get("detail") or answer.get("description")  # TAXII's error shape
    except (ValueError, AttributeError, UnicodeDecodeError):
        return body[:200].decode("utf-8", "replace") or "(no detail)"
    if isinstance(detail, list):
        return "; ".join(
            f"{p.get('field', '?')}: {p.get('problem', p.get('msg', '?'))}"
            for p in detail[:5]
            if isinstance(p, dict)
        )
    return str(detail)
