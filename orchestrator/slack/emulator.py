"""A fake of the Slack Web API for tests and demos: the five methods Garrison calls, with Slack's
answer shapes and Slack's limits, holding state a test can read in `app.state.slack`.

It enforces what real Slack enforces and a careless client trips over: one chat.postMessage per
second per channel (a faster post gets HTTP 429 with `Retry-After` and is not stored), the
bearer token (`not_authed`, `invalid_auth`), and Block Kit's limits (`invalid_blocks`). The
generic vendor faults (503s, 429s, latency) and the request ledger are the shared
`FaultMiddleware`'s; an outage (`outage` or `outage_until`, a monotonic time) answers 503 to
every call.
"""

from __future__ import annotations

import base64
import json
import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import parse_qs

from fastapi import FastAPI, Request
from starlette.responses import JSONResponse, Response

from orchestrator.approvals.directory import SLACK_USER
from tools.emulators.base import EmulatorState, FaultMiddleware, LedgerEntry

BOT_ID = "B0GARRISON"
_CHANNEL = re.compile(r"[CGD][A-Z0-9]{2,20}")
_TEXT_TYPES = ("plain_text", "mrkdwn")
_JSON_ARGS = ("blocks", "metadata")


class _Refused(Exception):
    """An `ok: false` answer, raised from deep inside a handler."""

    def __init__(self, error: str, detail: str | None = None) -> None:
        super().__init__(error)
        self.error = error
        self.detail = detail


@dataclass(frozen=True)
class Edit:
    """A message's text and blocks before a chat.update replaced them."""

    text: str
    blocks: list[dict[str, Any]]
    at: float


@dataclass
class StoredMessage:
    ts: str
    thread_ts: str | None
    text: str
    blocks: list[dict[str, Any]]
    metadata: dict[str, Any] | None
    reply_broadcast: bool
    received_at: float  # the emulator's monotonic clock
    edits: list[Edit] = field(default_factory=list)

    def as_slack(self, *, with_metadata: bool) -> dict[str, Any]:
        shown: dict[str, Any] = {
            "type": "message",
            "bot_id": BOT_ID,
            "text": self.text,
            "blocks": self.blocks,
            "ts": self.ts,
        }
        if self.thread_ts is not None:
            shown["thread_ts"] = self.thread_ts
        if with_metadata and self.metadata is not None:
            shown["metadata"] = self.metadata
        return shown


@dataclass(frozen=True)
class Ephemeral:
    channel: str
    user: str
    text: str
    blocks: list[dict[str, Any]] | None
    message_ts: str


@dataclass
class SlackState(EmulatorState):
    """Everything the fake workspace holds, and the knobs a test turns."""

    token: str = ""
    usergroups: dict[str, list[str]] = field(default_factory=dict)
    channels: frozenset[str] | None = None  # None: any well-formed channel id exists
    rate_per_channel_s: float = 1.0
    messages: dict[str, list[StoredMessage]] = field(default_factory=dict)
    ephemerals: list[Ephemeral] = field(default_factory=list)
    outage: bool = False
    outage_until: float | None = None
    clock: Callable[[], float] = time.monotonic
    last_post: dict[str, float] = field(default_factory=dict)
    last_ts_us: int = 0

    def force_429(self, retry_after: int, calls: int = 1) -> None:
        """The next `calls` requests, whatever they are, get 429 with `Retry-After`."""
        self.faults.retry_after_s = retry_after
        self.faults.rate_limit_429 = calls

    def down(self) -> bool:
        until = self.outage_until
        return self.outage or (until is not None and self.clock() < until)

    def calls(self, method: str) -> list[LedgerEntry]:
        """The ledger entries of one Web API method, e.g. `calls("chat.postMessage")`."""
        return [entry for entry in self.ledger if entry.path == f"/api/{method}"]

    def top_level(self, channel: str) -> list[StoredMessage]:
        return [
            m
            for m in self.messages.get(channel, [])
            if m.thread_ts in (None, m.ts) or m.reply_broadcast
        ]

    def find(self, channel: str, ts: str) -> StoredMessage | None:
        return next((m for m in self.messages.get(channel, []) if m.ts == ts), None)

    def next_ts(self) -> str:
        """Unique and increasing, in Slack's `seconds.micros` form."""
        self.last_ts_us = max(int(time.time() * 1_000_000), self.last_ts_us + 1)
        seconds, micros = divmod(self.last_ts_us, 1_000_000)
        return f"{seconds}.{micros:06d}"


def slack_emulator(
    token: str,
    *,
    usergroups: dict[str, list[str]] | None = None,
    rate_per_channel_s: float = 1.0,
    channels: frozenset[str] | None = None,
) -> FastAPI:
    """The emulator app; `channels` limits which channel ids exist (default: any well-formed)."""
    state = SlackState(
        token=token,
        usergroups=dict(usergroups or {}),
        rate_per_channel_s=rate_per_channel_s,
        channels=channels,
    )
    app = FastAPI()
    app.state.slack = state
    app.add_middleware(FaultMiddleware, state=state)
    handlers: dict[str, Callable[[SlackState, dict[str, Any]], Response | dict[str, Any]]] = {
        "chat.postMessage": _post_message,
        "chat.update": _update,
        "chat.postEphemeral": _post_ephemeral,
        "usergroups.users.list": _usergroup_users,
        "conversations.history": _history,
        "conversations.replies": _replies,
    }

    @app.api_route("/api/{method}", methods=["GET", "POST"])
    async def web_api(method: str, request: Request) -> Response:
        if state.down():
            return JSONResponse({"ok": False, "error": "service_unavailable"}, status_code=503)
        handler = handlers.get(method)
        if handler is None:
            return _refuse("unknown_method", status=404)
        try:
            args = await _arguments(request)
            _authorise(state, request, args)
            answer = handler(state, args)
        except _Refused as refused:
            return _refuse(refused.error, detail=refused.detail)
        return answer if isinstance(answer, Response) else JSONResponse({"ok": True, **answer})

    return app


def _refuse(error: str, *, status: int = 200, detail: str | None = None) -> JSONResponse:
    body: dict[str, Any] = {"ok": False, "error": error}
    if detail is not None:
        body["errors"] = [detail]
    return JSONResponse(body, status_code=status)


async def _arguments(request: Request) -> dict[str, Any]:
    """Query string, then a JSON or form body; JSON-valued form fields (blocks) decoded."""
    args: dict[str, Any] = dict(request.query_params)
    body = await request.body()
    if body and request.headers.get("content-type", "").startswith("application/json"):
        try:
            parsed = json.loads(body)
        except ValueError as error:
            raise _Refused("invalid_json") from error
        if not isinstance(parsed, dict):
            raise _Refused("invalid_json")
        args.update(parsed)
    elif body:
        args.update({k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()})
        for name in _JSON_ARGS:
            if isinstance(args.get(name), str):
                try:
                    args[name] = json.loads(args[name])
                except ValueError as error:
                    raise _Refused(f"invalid_{name}") from error
    return args


def _authorise(state: SlackState, request: Request, args: dict[str, Any]) -> None:
    header = request.headers.get("authorization", "")
    token = header.removeprefix("Bearer ").strip() if header else args.get("token")
    if not token:
        raise _Refused("not_authed")
    if token != state.token:
        raise _Refused("invalid_auth")


def _channel(state: SlackState, args: dict[str, Any]) -> str:
    channel = args.get("channel")
    known = state.channels
    if not isinstance(channel, str) or not _CHANNEL.fullmatch(channel):
        raise _Refused("channel_not_found")
    if known is not None and channel not in known:
        raise _Refused("channel_not_found")
    return channel


def _content(args: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    text, blocks = args.get("text"), args.get("blocks")
    if not text and not blocks:
        raise _Refused("no_text")
    if not isinstance(text, str | None):
        raise _Refused("invalid_arguments")
    if len(text or "") > 40_000:
        raise _Refused("msg_too_long")
    if blocks and (problem := block_problem(blocks)) is not None:
        raise _Refused("invalid_blocks", problem)
    return text or "", list(blocks or [])


def _post_message(state: SlackState, args: dict[str, Any]) -> Response | dict[str, Any]:
    channel = _channel(state, args)
    text, blocks = _content(args)
    metadata = args.get("metadata")
    if metadata is not None and not (
        isinstance(metadata, dict)
        and isinstance(metadata.get("event_type"), str)
        and isinstance(metadata.get("event_payload"), dict)
    ):
        raise _Refused("invalid_metadata_format")
    now = state.clock()
    last = state.last_post.get(channel)
    if last is not None and now - last < state.rate_per_channel_s:
        wait = max(1, math.ceil(state.rate_per_channel_s - (now - last)))
        return JSONResponse(
            {"ok": False, "error": "ratelimited"},
            status_code=429,
            headers={"Retry-After": str(wait)},
        )
    state.last_post[channel] = now
    thread_ts = args.get("thread_ts")
    message = StoredMessage(
        ts=state.next_ts(),
        thread_ts=thread_ts if isinstance(thread_ts, str) else None,
        text=text,
        blocks=blocks,
        metadata=metadata,
        reply_broadcast=_truthy(args.get("reply_broadcast")),
        received_at=now,
    )
    state.messages.setdefault(channel, []).append(message)
    state.changed()
    shown = message.as_slack(with_metadata=True)
    return {"channel": channel, "ts": message.ts, "message": shown}


def _update(state: SlackState, args: dict[str, Any]) -> dict[str, Any]:
    channel = _channel(state, args)
    ts = args.get("ts")
    message = state.find(channel, ts) if isinstance(ts, str) else None
    if message is None:
        raise _Refused("message_not_found")
    text, blocks = _content(args)
    message.edits.append(Edit(text=message.text, blocks=message.blocks, at=state.clock()))
    message.text, message.blocks = text, blocks
    state.changed()
    shown = message.as_slack(with_metadata=False)
    return {"channel": channel, "ts": message.ts, "text": text, "message": shown}


def _post_ephemeral(state: SlackState, args: dict[str, Any]) -> dict[str, Any]:
    channel = _channel(state, args)
    user = args.get("user")
    if not isinstance(user, str) or not SLACK_USER.fullmatch(user):
        raise _Refused("user_not_in_channel")
    text, blocks = _content(args)
    ephemeral = Ephemeral(channel, user, text, blocks or None, state.next_ts())
    state.ephemerals.append(ephemeral)
    return {"message_ts": ephemeral.message_ts}


def _usergroup_users(state: SlackState, args: dict[str, Any]) -> dict[str, Any]:
    usergroup = args.get("usergroup")
    if not isinstance(usergroup, str) or not usergroup:
        raise _Refused("invalid_arguments")
    if usergroup not in state.usergroups:
        raise _Refused("no_such_subteam")
    return {"users": list(state.usergroups[usergroup])}


def _history(state: SlackState, args: dict[str, Any]) -> dict[str, Any]:
    """Newest first, top-level messages only (thread replies unless broadcast), as Slack does."""
    channel = _channel(state, args)
    oldest = _ts_arg(args.get("oldest"), "0")
    latest = _ts_arg(args.get("latest"), "9999999999")
    inclusive = _truthy(args.get("inclusive"))
    if cursor := args.get("cursor"):  # the ts of the last message of the previous page
        try:
            latest = Decimal(base64.b64decode(str(cursor)).decode())
        except (ValueError, InvalidOperation) as error:
            raise _Refused("invalid_cursor") from error
    try:
        limit = min(max(int(args.get("limit", 100)), 1), 999)
    except ValueError as error:
        raise _Refused("invalid_limit") from error

    def wanted(ts: Decimal) -> bool:
        after = oldest < ts or (inclusive and ts == oldest)
        return after and (ts < latest or (inclusive and not cursor and ts == latest))

    picked = [m for m in reversed(state.top_level(channel)) if wanted(Decimal(m.ts))]
    page, more = picked[:limit], len(picked) > limit
    metadata = _truthy(args.get("include_all_metadata"))
    next_cursor = base64.b64encode(page[-1].ts.encode()).decode() if more else ""
    return {
        "messages": [m.as_slack(with_metadata=metadata) for m in page],
        "has_more": more,
        "pin_count": 0,
        "response_metadata": {"next_cursor": next_cursor},
    }


def _replies(state: SlackState, args: dict[str, Any]) -> dict[str, Any]:
    """A thread: its parent first, then the replies oldest first (one page of up to 1,000)."""
    channel = _channel(state, args)
    parent = str(args.get("ts") or "")
    thread = [m for m in state.messages.get(channel, []) if parent in (m.ts, m.thread_ts)]
    if not any(m.ts == parent for m in thread):
        raise _Refused("thread_not_found")
    metadata = _truthy(args.get("include_all_metadata"))
    return {
        "messages": [m.as_slack(with_metadata=metadata) for m in thread[:1000]],
        "has_more": False,
        "response_metadata": {"next_cursor": ""},
    }


def block_problem(blocks: object) -> str | None:
    """What Slack would refuse in these blocks (the limits Garrison's cards must keep), or None."""
    if not isinstance(blocks, list) or not 1 <= len(blocks) <= 50:
        return "blocks must be a list of 1 to 50 blocks"
    block_ids: set[str] = set()
    for block in blocks:
        if not isinstance(block, dict) or not isinstance(block.get("type"), str):
            return "a block without a type"
        block_id = block.get("block_id")
        if block_id is not None:
            if block_id in block_ids or len(str(block_id)) > 255:
                return f"block_id {str(block_id)[:40]!r} repeated or too long"
            block_ids.add(block_id)
        problem = _limits(block)
        if problem is not None:
            return problem
    return _texts_problem(blocks)


def _limits(block: dict[str, Any]) -> str | None:
    kind = block["type"]
    if kind == "header" and _length(block.get("text")) > 150:
        return "header text over 150"
    if kind == "section":
        fields = block.get("fields") or []
        if "text" not in block and not fields:
            return "section without text or fields"
        if len(fields) > 10 or any(_length(f) > 2000 for f in fields):
            return "section fields over 10, or a field over 2000"
    if kind == "context" and not 1 <= len(block.get("elements") or []) <= 10:
        return "context with 0 or over 10 elements"
    buttons = (block.get("elements") or []) if kind == "actions" else []
    for element in buttons:
        if _length(element.get("text")) > 75 or len(str(element.get("value", ""))) > 2000:
            return "button text over 75 or value over 2000"
        if len(str(element.get("action_id", ""))) > 255:
            return "action_id over 255"
        confirm = element.get("confirm") or {}
        if _length(confirm.get("title")) > 100 or _length(confirm.get("text")) > 300:
            return "confirm title over 100 or text over 300"
    return None


def _texts_problem(node: object) -> str | None:
    """Every text object anywhere: a known type, 1 to 3000 characters."""
    if isinstance(node, list):
        return next((p for p in map(_texts_problem, node) if p is not None), None)
    if not isinstance(node, dict):
        return None
    if node.get("type") in _TEXT_TYPES and "text" in node:
        text = node["text"]
        if not isinstance(text, str) or not 1 <= _length(node) <= 3000:
            return "a text object empty or over 3000"
        return None
    return next((p for p in map(_texts_problem, node.values()) if p is not None), None)


def _length(text_object: object) -> int:
    """Characters in a text object, counted in UTF-16 units (the stricter reading)."""
    if not isinstance(text_object, dict) or not isinstance(text_object.get("text"), str):
        return 0
    return len(text_object["text"].encode("utf-16-le")) // 2


def _ts_arg(value: object, default: str) -> Decimal:
    try:
        return Decimal(str(value) if value not in (None, "") else default)
    except InvalidOperation as error:
        raise _Refused("invalid_ts_oldest") from error


def _truthy(value: object) -> bool:
    return value is True or (isinstance(value, str) and value.lower() in ("1", "true"))
