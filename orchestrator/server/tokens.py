"""Bearer tokens of the HTTP API, kept as SHA-256 digests (`GARRISON_API_TOKENS_FILE`):

    tokens:
      alice: "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
      splunk-prod: {digest: "sha256:...", scopes: [ingest]}

Each token stands for one identity, checked by the approver directory like any other channel;
the file holds no secret worth stealing. A token's scopes say what it may call: `read` (incidents
and approvals), `approve` (decide, still subject to the approver directory), `ingest` (send
alerts), `intel:read` and `intel:write` (the TAXII collections, `docs/intel.md`). A bare
digest has `read` and `approve`, as before scopes existed; a sender of alerts gets `ingest` only.
`garrison api-token NAME [--scope ingest]` prints a new token and the line to add.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from enum import StrEnum
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from orchestrator.yaml_files import load_yaml_model

_DIGEST = r"^sha256:[0-9a-f]{64}$"


class TokensError(Exception):
    """The tokens file is missing or malformed; the message names the problem."""


class Scope(StrEnum):
    READ = "read"
    APPROVE = "approve"
    INGEST = "ingest"
    INTEL_READ = "intel:read"  # read the TAXII collections the token's identity may read
    INTEL_WRITE = "intel:write"  # publish to the collections it may write


LEGACY_SCOPES = (Scope.READ, Scope.APPROVE)


class TokenEntry(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    digest: str
    scopes: list[Scope] = Field(default_factory=lambda: list(LEGACY_SCOPES), min_length=1)


class ApiTokens(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    tokens: dict[str, str | TokenEntry] = Field(default_factory=dict)

    def identity(self, token: str) -> str | None:
        """The identity a presented token stands for, compared in constant time."""
        found = self.authenticate(token)
        return None if found is None else found[0]

    def authenticate(self, token: str) -> tuple[str, frozenset[Scope]] | None:
        """The identity and scopes of a presented token (every entry compared, in constant
        time), or None."""
        presented = digest(token)
        found = None
        for name, entry in self.tokens.items():
            expected = entry if isinstance(entry, str) else entry.digest
            scopes = LEGACY_SCOPES if isinstance(entry, str) else entry.scopes
            if hmac.compare_digest(presented, expected):
                found = (name, frozenset(scopes))
        return found

    @classmethod
    def load(cls, path: Path) -> ApiTokens:
        loaded = load_yaml_model(cls, path, TokensError, "the API tokens", empty_ok=True)
        for name, entry in loaded.tokens.items():
            value = entry if isinstance(entry, str) else entry.digest
            if not _valid_digest(value):
                raise TokensError(f"{path}: tokens.{name}: expected 'sha256:<64 hex digits>'")
        return loaded


def digest(token: str) -> str:
    return "sha256:" + hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def new_token() -> str:
    return "grs_" + secrets.token_urlsafe(32)


def _valid_digest(value: str) -> bool:
    return re.fullmatch(_DIGEST, value) is not None
