"""Senders that sign their webhooks instead of presenting a bearer token
(`GARRISON_INGEST_SOURCES_FILE`):

    sources:
      suricata-dmz: {secret: "<at least 32 characters>", shape: suricata}
      siem-relay:   {secret: "<...>"}

A sender posts to `POST /api/alerts/webhook/<source>` with `X-Garrison-Timestamp` (Unix seconds)
and `X-Garrison-Signature: v1=<hex HMAC-SHA256 of "v1:<timestamp>:<raw body>" under the secret>`,
the scheme Slack and GitHub use. A timestamp outside five minutes, a wrong digest, or a signature
already received (a replay) is refused. `shape`, when set, fixes the shape of that source's alerts.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from orchestrator.ingest.normalised import Shape
from orchestrator.yaml_files import load_yaml_model

VERSION = "v1"
WINDOW_S = 300
TIMESTAMP_HEADER = "x-garrison-timestamp"
SIGNATURE_HEADER = "x-garrison-signature"
SOURCE_NAME = r"^[a-z0-9][a-z0-9._-]{0,63}$"
_TIMESTAMP = re.compile(r"[0-9]{1,12}")
_SIGNATURE = re.compile(r"v1=[0-9a-f]{64}")


class SourcesError(Exception):
    """The sources file is missing or malformed; the message names the problem."""


class SignatureRejected(Exception):
    """The delivery is not provably from the source; the message says why (no secrets)."""


class WebhookSource(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    secret: SecretStr
    shape: Shape | None = None

    @field_validator("secret")
    @classmethod
    def _long_enough(cls, secret: SecretStr) -> SecretStr:
        if len(secret.get_secret_value()) < 32:
            raise ValueError("the secret must be at least 32 characters")
        return secret


class IngestSources(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    sources: dict[str, WebhookSource] = Field(default_factory=dict)

    @field_validator("sources")
    @classmethod
    def _names(cls, sources: dict[str, WebhookSource]) -> dict[str, WebhookSource]:
        for name in sources:
            if not re.fullmatch(SOURCE_NAME, name):
                raise ValueError(f"{name!r}: a source name is lower-case letters, digits, . _ -")
        return sources

    @classmethod
    def load(cls, path: Path) -> IngestSources:
        return load_yaml_model(cls, path, SourcesError, "the ingestion sources", empty_ok=True)


def signature(secret: str, timestamp: str, body: bytes) -> str:
    base = f"{VERSION}:{timestamp}:".encode() + body
    return f"{VERSION}=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def verify(secret: str, headers: Mapping[str, str], body: bytes, now: float) -> str:
    """The verified signature (the replay key), or `SignatureRejected`."""
    timestamp = headers.get(TIMESTAMP_HEADER)
    sent = headers.get(SIGNATURE_HEADER)
    if timestamp is None or sent is None:
        raise SignatureRejected("missing X-Garrison-Timestamp or X-Garrison-Signature")
    if not _TIMESTAMP.fullmatch(timestamp):
        raise SignatureRejected("X-Garrison-Timestamp is not a plausible Unix time")
    if abs(now - int(timestamp)) > WINDOW_S:
        raise SignatureRejected("X-Garrison-Timestamp is outside the five-minute window")
    if not _SIGNATURE.fullmatch(sent):
        raise SignatureRejected("X-Garrison-Signature is not a v1 signature")
    if not hmac.compare_digest(sent, signature(secret, timestamp, body)):
        raise SignatureRejected("X-Garrison-Signature does not match the body")
    return sent
