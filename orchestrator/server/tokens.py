"""Bearer tokens of the HTTP API, kept as SHA-256 digests (`GARRISON_API_TOKENS_FILE`):

    tokens:
      alice: "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
      soar-bot: "sha256:..."

Each token stands for one identity, checked by the approver directory like any other channel;
the file holds no secret worth stealing. `garrison api-token NAME` prints a new token and the
line to add.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from orchestrator.yaml_files import load_yaml_model

_DIGEST = r"^sha256:[0-9a-f]{64}$"


class TokensError(Exception):
    """The tokens file is missing or malformed; the message names the problem."""


class ApiTokens(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    tokens: dict[str, str] = Field(default_factory=dict)

    def identity(self, token: str) -> str | None:
        """The identity a presented token stands for, compared in constant time."""
        presented = digest(token)
        found = None
        for name, expected in self.tokens.items():
            if hmac.compare_digest(presented, expected):
                found = name
        return found

    @classmethod
    def load(cls, path: Path) -> ApiTokens:
        loaded = load_yaml_model(cls, path, TokensError, "the API tokens", empty_ok=True)
        for name, value in loaded.tokens.items():
            if not _valid_digest(value):
                raise TokensError(f"{path}: tokens.{name}: expected 'sha256:<64 hex digits>'")
        return loaded


def digest(token: str) -> str:
    return "sha256:" + hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def new_token() -> str:
    return "grs_" + secrets.token_urlsafe(32)


def _valid_digest(value: str) -> bool:
    return re.fullmatch(_DIGEST, value) is not None
