"""Slack's v0 request signature: compute it, and verify an incoming request before anything else.

Slack signs `v0:{X-Slack-Request-Timestamp}:{raw body}` with HMAC-SHA256 under the app's signing
secret and sends `v0=<hex>` in `X-Slack-Signature`. Verification never raises anything but
`SignatureRejected`, whatever the headers hold (slack_sdk's verifier raises ValueError on a
non-numeric timestamp): a missing header, a timestamp that is not a short decimal, a stale or
future timestamp outside the window, or a digest that does not match. The comparison is
constant-time.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping

VERSION = "v0"
WINDOW_S = 300  # Slack's own: requests older (or newer) than five minutes are refused
TIMESTAMP_HEADER = "x-slack-request-timestamp"
SIGNATURE_HEADER = "x-slack-signature"
_TIMESTAMP = re.compile(r"[0-9]{1,12}")  # seconds since the epoch; twelve digits is year 33658
_SIGNATURE = re.compile(r"v0=[0-9a-f]{64}")


class SignatureRejected(Exception):
    """The request is not provably from Slack; the message says why (safe to log, no secrets)."""


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """The `X-Slack-Signature` value Slack would send for this body at this timestamp."""
    base = f"{VERSION}:{timestamp}:".encode() + body
    digest = hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    return f"{VERSION}={digest}"


def verify(secret: str, headers: Mapping[str, str], body: bytes, now: float) -> None:
    """Raise `SignatureRejected` unless the headers prove Slack sent `body` within the window.

    `headers` must be case-insensitive or lower-case keyed (Starlette's are)."""
    timestamp = headers.get(TIMESTAMP_HEADER)
    sent = headers.get(SIGNATURE_HEADER)
    if timestamp is None or sent is None:
        raise SignatureRejected("missing X-Slack-Request-Timestamp or X-Slack-Signature")
    if not _TIMESTAMP.fullmatch(timestamp):
        raise SignatureRejected("X-Slack-Request-Timestamp is not a plausible Unix time")
    if abs(now - int(timestamp)) > WINDOW_S:
        raise SignatureRejected("X-Slack-Request-Timestamp is outside the five-minute window")
    if not _SIGNATURE.fullmatch(sent):
        raise SignatureRejected("X-Slack-Signature is not a v0 signature")
    if not hmac.compare_digest(sent, signature(secret, timestamp, body)):
        raise SignatureRejected("X-Slack-Signature does not match the body")
