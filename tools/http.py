"""What every vendor adapter shares: the one mapping from HTTP answers and transport failures to
the error tree, and a per-vendor rate budget in which containment goes ahead of enrichment.

The client never retries by itself: a transient error is raised (with the vendor's Retry-After) and
Temporal retries the activity. Every client verifies TLS with one shared context (`tls_context()`):
building one loads the CA bundle, about 20 ms of CPU, which httpx would otherwise pay per client.
"""

from __future__ import annotations

import asyncio
import email.utils
import functools
import logging
import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import IntEnum
from typing import Any

import certifi
import httpx

from tools.errors import AuthError, NotFoundError, PermanentToolError, TransientToolError

MAX_ERROR_BODY = 500


@functools.cache
def tls_context() -> ssl.SSLContext:
    """The verifying TLS context every vendor client uses (httpx's own default: certifi's CAs)."""
    return ssl.create_default_context(cafile=certifi.where())


class Priority(IntEnum):
    """Lower goes first when the budget is short."""

    CONTAINMENT = 0
    ENRICHMENT = 1


class RateBudget:
    """A token bucket: `rate_per_minute` calls, bursts up to `burst`. Waiters are served by
    priority, so a storm of enrichment reads never delays an isolation."""

    def __init__(self, rate_per_minute: float, burst: int | None = None) -> None:
        self.rate_per_s = rate_per_minute / 60.0
        self.capacity = float(burst if burst is not None else max(1, int(rate_per_minute // 6)))
        self.tokens = self.capacity
        self.updated = time.monotonic()
        self._waiting: dict[Priority, int] = dict.fromkeys(Priority, 0)
        self._lock = asyncio.Lock()

    def _refill(self) -> None:
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate_per_s)
        self.updated = now

    async def acquire(self, priority: Priority = Priority.ENRICHMENT) -> None:
        self._waiting[priority] += 1
        try:
            while True:
                async with self._lock:
                    self._refill()
                    ahead = any(self._waiting[p] for p in Priority if p < priority)
                    if self.tokens >= 1 and not ahead:
                        self.tokens -= 1
                        return
                    wait = max((1 - self.tokens) / self.rate_per_s, 0.005)
                await asyncio.sleep(min(wait, 0.25))
        finally:
            self._waiting[priority] -= 1


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """`Retry-After` as seconds: an integer, or an HTTP date."""
    value = headers.get("retry-after")
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def raise_for_status(response: httpx.Response, vendor: str) -> None:
    """Map a vendor's error answer once: 429 and 5xx are transient, 401/403 are auth, 404 is not
    found, every other 4xx is permanent. The message names the vendor, the call and the body."""
    status = response.status_code
    if status < 400:
        return
    request = response.request
    body = response.text[:MAX_ERROR_BODY] if response.content else ""
    message = f"{vendor}: {request.method} {request.url.path} -> {status} {body}".strip()
    if status == 429 or status >= 500:
        raise TransientToolError(message, retry_after_s=retry_after_seconds(response.headers))
    if status in (401, 403):
        raise AuthError(message)
    if status == 404:
        raise NotFoundError(message)
    raise PermanentToolError(message)


@dataclass(frozen=True)
class VendorCall:
    """One vendor call as the observers see it (`add_call_observer`): no URL, no body."""

    vendor: str
    method: str
    status: str  # the HTTP status, or "timeout" / "transport_error"
    seconds: float  # the call itself
    budget_wait_s: float | None  # None: the call has no budget
    priority: str


_observers: list[Callable[[VendorCall], None]] = []


def add_call_observer(observer: Callable[[VendorCall], None]) -> None:
    """Have `observer` told of every vendor call in this process (metrics: the orchestrator
    registers one; tools know nothing of Prometheus). Registering it again does nothing."""
    if observer not in _observers:
        _observers.append(observer)


def _tell(call: VendorCall) -> None:
    for observer in _observers:
        try:
            observer(call)
        except Exception:  # an observer's failure never fails the call
            logging.getLogger(__name__).exception("vendor call observer failed")


async def send(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    vendor: str,
    budget: RateBudget | None = None,
    priority: Priority = Priority.ENRICHMENT,
    check: bool = True,
    **kwargs: Any,
) -> httpx.Response:
    """One vendor call under the budget; transport failures and timeouts are transient."""
    waited: float | None = None
    if budget is not None:
        queued = time.monotonic()
        await budget.acquire(priority)
        waited = time.monotonic() - queued
    started = time.monotonic()

    def told(status: str) -> None:
        elapsed = time.monotonic() - started
        _tell(VendorCall(vendor, method, status, elapsed, waited, priority.name.lower()))

    try:
        response = await client.request(method, url, **kwargs)
    except httpx.TimeoutException as error:
        told("timeout")
        raise TransientToolError(f"{vendor}: {method} {url} timed out: {error}") from error
    except httpx.TransportError as error:
        told("transport_error")
        raise TransientToolError(f"{vendor}: {method} {url} failed: {error!r}") from error
    told(str(response.status_code))
    if check:
        raise_for_status(response, vendor)
    return response
