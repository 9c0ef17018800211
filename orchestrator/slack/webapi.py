"""A small Slack Web API client on httpx: the five calls approvals need, paced and classified.

Slack answers HTTP 200 with `{"ok": false, "error": "..."}` on failure and HTTP 429 with
`Retry-After` when rate limited. chat.postMessage allows about one message per second per
channel, so the client paces posts itself (a lock and the last post's time per channel): a burst
of approvals never trips the limit. A 429 is waited out (never sooner than Retry-After) a few
times; beyond that budget, or when Retry-After is longer than it is worth waiting in an activity,
the error is raised as `SlackUnavailable` with the delay, and Temporal retries later. Whether an
error is worth retrying is decided here, once: `SlackUnavailable` is a `TransientToolError`,
`SlackApiError` a `PermanentToolError`. The token lives in an `httpx.Auth` and is never put in a
message or a log line.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Sequence
from contextlib import asynccontextmanager
from typing import Any, TypedDict

import httpx
from pydantic import SecretStr

from tools.errors import PermanentToolError, TransientToolError
from tools.http import retry_after_seconds, tls_context

log = logging.getLogger("garrison.slack")

# Slack's own `ok: false` codes that mean "try again later", not "you asked wrongly".
_TRANSIENT_CODES = frozenset(
    {"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"}
)
_ERROR_CODE = re.compile(r"[a-z0-9_]{1,64}")
_HISTORY_PAGE = 200
_HISTORY_PAGES = 5


class SlackError(Exception):
    """Base of every Slack Web API failure."""


class SlackUnavailable(SlackError, TransientToolError):
    """5xx, connection or read failure, or still rate limited after the budget: retry later,
    after `retry_after_s` when Slack said so."""


class SlackApiError(SlackError, PermanentToolError):
    """Slack refused the call (`ok: false`): asking again the same way gets the same answer."""

    def __init__(self, error: str, *, method: str = "") -> None:
        super().__init__(f"slack: {method or 'call'} -> {error}")
        self.error = error
        self.method = method


class MessageMetadata(TypedDict):
    """Slack message metadata; Garrison keys its posts with `event_payload.key`."""

    event_type: str
    event_payload: dict[str, str]


class _BearerAuth(httpx.Auth):
    def __init__(self, token: str | SecretStr) -> None:
        self._token = token if isinstance(token, SecretStr) else SecretStr(token)

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self._token.get_secret_value()}"
        yield request


class SlackWebClient:
    """One long-lived client per process; close it with `aclose` (or `async with`)."""

    def __init__(
        self,
        base_url: str,
        token: str | SecretStr,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        min_interval_s: float = 1.0,
        max_retry_after_s: float = 60.0,
        rate_limit_retries: int = 3,
        timeout_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        root = base_url.rstrip("/")
        self._http = httpx.AsyncClient(
            verify=tls_context(),
            base_url=root if root.endswith("/api") else f"{root}/api",
            auth=_BearerAuth(token),
            transport=transport,
            timeout=httpx.Timeout(timeout_s, connect=5.0),
        )
        self._min_interval_s = min_interval_s
        self._max_retry_after_s = max_retry_after_s
        self._rate_limit_retries = rate_limit_retries
        self._clock = clock
        self._sleep = sleep
        self._channel_locks: dict[str, asyncio.Lock] = {}
        self._last_post: dict[str, float] = {}

    async def __aenter__(self) -> SlackWebClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def post_message(
        self,
        channel: str,
        *,
        text: str,
        blocks: Sequence[dict[str, Any]],
        thread_ts: str | None = None,
        reply_broadcast: bool = False,
        metadata: MessageMetadata | None = None,
    ) -> str:
        """Post and return the message's `ts`. Unfurls are off: nothing in a card previews a
        link, and `parse: none` (the default, pinned) leaves bare names and URLs alone."""
        body: dict[str, Any] = {
            "channel": channel,
            "text": text,
            "unfurl_links": False,
            "unfurl_media": False,
            "parse": "none",
        }
        if blocks:
            body["blocks"] = list(blocks)
        if thread_ts is not None:
            body["thread_ts"] = thread_ts
            body["reply_broadcast"] = reply_broadcast
        if metadata is not None:
            body["metadata"] = metadata
        async with self._paced(channel):
            answer = await self._call("chat.postMessage", body=body)
        return _string(answer, "ts", "chat.postMessage")

    async def update(
        self, channel: str, ts: str, *, text: str, blocks: Sequence[dict[str, Any]]
    ) -> None:
        body = {"channel": channel, "ts": ts, "text": text, "blocks": list(blocks)}
        await self._call("chat.update", body=body)

    async def post_ephemeral(
        self,
        channel: str,
        user: str,
        *,
        text: str,
        blocks: Sequence[dict[str, Any]] | None = None,
    ) -> None:
        body: dict[str, Any] = {"channel": channel, "user": user, "text": text}
        if blocks is not None:
            body["blocks"] = list(blocks)
        await self._call("chat.postEphemeral", body=body)

    async def usergroup_members(self, usergroup: str) -> frozenset[str]:
        answer = await self._call("usergroups.users.list", params={"usergroup": usergroup})
        users = answer.get("users")
        if not isinstance(users, list):
            raise SlackUnavailable("slack: usergroups.users.list -> answer without users")
        return frozenset(u for u in users if isinstance(u, str))

    async def find_message(
        self, channel: str, *, event_type: str, key: str, oldest: str | None = None
    ) -> str | None:
        """The `ts` of the newest top-level message Garrison posted with this metadata key, or
        None: how a post whose answer was lost is found again instead of posted twice. Reads
        at most a thousand messages of history (after `oldest` when given)."""
        params = {"channel": channel, "include_all_metadata": "true", "limit": str(_HISTORY_PAGE)}
        if oldest is not None:
            params["oldest"] = oldest
        for _ in range(_HISTORY_PAGES):
            page = await self._call("conversations.history", params=params)
            for message in page.get("messages") or []:
                if _metadata_key(message, event_type) == key:
                    return _string(message, "ts", "conversations.history")
            cursor = (page.get("response_metadata") or {}).get("next_cursor")
            if not page.get("has_more") or not cursor:
                return None
            params["cursor"] = cursor
        return None

    async def find_reply(
        self, channel: str, thread_ts: str, *, event_type: str, key: str
    ) -> str | None:
        """Like `find_message`, in one thread (`conversations.replies`): history never shows
        replies that were not broadcast to the channel."""
        params = {"channel": channel, "ts": thread_ts, "include_all_metadata": "true"}
        page = await self._call("conversations.replies", params=params)
        for message in page.get("messages") or []:
            if _metadata_key(message, event_type) == key:
                return _string(message, "ts", "conversations.replies")
        return None

    @asynccontextmanager
    async def _paced(self, channel: str) -> AsyncIterator[None]:
        """One chat.postMessage at a time per channel, `min_interval_s` after the previous
        answer (not its start: what counts is when Slack saw it, and that is before the answer)."""
        lock = self._channel_locks.setdefault(channel, asyncio.Lock())
        async with lock:
            last = self._last_post.get(channel)
            if last is not None:
                wait = last + self._min_interval_s - self._clock()
                if wait > 0:
                    await self._sleep(wait)
            try:
                yield
            finally:
                self._last_post[channel] = self._clock()

    async def _call(
        self,
        method: str,
        *,
        body: dict[str, Any] | None = None,
        params: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """One Web API call, 429s waited out within the budget; returns the `ok: true` answer."""
        for attempt in range(self._rate_limit_retries + 1):
            response = await self._send(method, body, params)
            answer = _json(response)
            code = _error_code(answer)
            if response.status_code == 429 or code == "ratelimited":
                delay = retry_after_seconds(response.headers)
                delay = 1.0 if delay is None else delay
                if attempt == self._rate_limit_retries or delay > self._max_retry_after_s:
                    raise SlackUnavailable(
                        f"slack: {method} -> rate limited, retry after {delay:g} s",
                        retry_after_s=delay,
                    )
                log.warning("slack %s rate limited: retrying in %.1f s", method, delay)
                await self._sleep(delay)
                continue
            if response.status_code >= 500:
                raise SlackUnavailable(f"slack: {method} -> HTTP {response.status_code}")
            if answer is None and response.status_code >= 400:
                raise SlackApiError(f"http_{response.status_code}", method=method)
            if answer is None:
                raise SlackUnavailable(f"slack: {method} -> HTTP {response.status_code}, no JSON")
            if answer.get("ok") is True:
                return answer
            if code in _TRANSIENT_CODES:
                raise SlackUnavailable(f"slack: {method} -> {code}")
            raise SlackApiError(code or f"http_{response.status_code}", method=method)
        raise AssertionError("unreachable: the loop returns or raises")

    async def _send(
        self, method: str, body: dict[str, Any] | None, params: dict[str, str] | None
    ) -> httpx.Response:
        try:
            if body is None:
                return await self._http.get(f"/{method}", params=params)
            return await self._http.post(
                f"/{method}",
                content=json.dumps(body, separators=(",", ":")).encode(),
                headers={"Content-Type": "application/json; charset=utf-8"},
            )
        except httpx.TimeoutException as error:
            raise SlackUnavailable(f"slack: {method} timed out") from error
        except httpx.TransportError as error:
            raise SlackUnavailable(f"slack: {method} failed: {type(error).__name__}") from error


def _json(response: httpx.Response) -> dict[str, Any] | None:
    try:
        answer = response.json()
    except ValueError:
        return None
    return answer if isinstance(answer, dict) else None


def _error_code(answer: dict[str, Any] | None) -> str | None:
    """Slack's error code, or None; anything not shaped like one is not echoed into messages."""
    if answer is None or answer.get("ok") is True:
        return None
    code = answer.get("error")
    return code if isinstance(code, str) and _ERROR_CODE.fullmatch(code) else "unknown_error"


def _metadata_key(message: object, event_type: str) -> object:
    """`event_payload.key` of a history message whose metadata has this event type, else None."""
    if not isinstance(message, dict):
        return None
    metadata = message.get("metadata")
    if not isinstance(metadata, dict) or metadata.get("event_type") != event_type:
        return None
    payload = metadata.get("event_payload")
    return payload.get("key") if isinstance(payload, dict) else None


def _string(answer: dict[str, Any], field: str, method: str) -> str:
    value = answer.get(field)
    if not isinstance(value, str) or not value:
        raise SlackUnavailable(f"slack: {method} -> answer without {field}")
    return value
