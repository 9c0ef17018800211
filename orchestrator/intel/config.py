"""The threat-intelligence file (`GARRISON_INTEL_FILE`, YAML): the sharing policy
(`policy.py`), the TAXII collections this Garrison serves, and the partners' feeds it pulls.

    organisation: Example SOC
    default_tlp: amber
    internal: {addresses: red, hosts: never, accounts: never}
    collections:                      # served under /taxii2/garrison/collections/
      - id: 2f0ae1a4-3c51-4f7b-9e0e-6b1d6a3c9f10
        alias: shared
        title: Incidents we share
        readers: ["*"]                # identities of tokens with `intel:read`; "*": every one
        writers: [garrison]           # identities of tokens with `intel:write`
    feeds:                            # read by `garrison intel pull`
      - name: partner-a
        taxii: {url: "https://partner-a.example/taxii2/garrison/", collection: shared,
                token_env: PARTNER_A_TAXII_TOKEN}
      - name: circl-osint
        misp: {url: "https://www.circl.lu/doc/misp/feed-osint/"}

Without collections, one (`shared`, readable and writable by every token with the scope) is
served. Tokens themselves live in `GARRISON_API_TOKENS_FILE` (`intel:read`, `intel:write`); a
feed's token is read from the named environment variable, never from this file.
"""

from __future__ import annotations

import re
import uuid
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, model_validator

from orchestrator.intel.policy import PolicyError, SharingPolicy
from orchestrator.yaml_files import load_yaml_model

DEFAULT_COLLECTION = uuid.UUID("5d3c1f0e-8d0b-4c5e-a0f4-6f1f3b2a9c01")
_NAME = r"^[a-z0-9][a-z0-9._-]{0,63}$"


class Collection(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    id: uuid.UUID
    alias: str = Field(pattern=_NAME)
    title: str = Field(min_length=1, max_length=256)
    description: str = Field(default="", max_length=2_048)
    readers: list[str] = Field(default_factory=lambda: ["*"])
    writers: list[str] = Field(default_factory=list)

    def may_read(self, identity: str) -> bool:
        return "*" in self.readers or identity in self.readers

    def may_write(self, identity: str) -> bool:
        return "*" in self.writers or identity in self.writers


class TaxiiFeed(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    url: HttpUrl  # the API root (`.../taxii2/garrison/`)
    collection: str = Field(min_length=1)  # its id, alias or title
    token_env: str | None = Field(default=None, pattern=r"^[A-Z_][A-Z0-9_]*$")


class MispFeed(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    url: HttpUrl  # the folder holding manifest.json and the <uuid>.json events


class Feed(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=_NAME)
    taxii: TaxiiFeed | None = None
    misp: MispFeed | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> Feed:
        if (self.taxii is None) == (self.misp is None):
            raise ValueError("a feed is either `taxii` or `misp`")
        return self

    @property
    def source(self) -> str:
        return f"{'taxii' if self.taxii else 'misp'}:{self.name}"


class IntelConfig(SharingPolicy):
    collections: list[Collection] = Field(
        default_factory=lambda: [
            Collection(
                id=DEFAULT_COLLECTION,
                alias="shared",
                title="Garrison shared intelligence",
                readers=["*"],
                writers=["*"],
            )
        ]
    )
    feeds: list[Feed] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique(self) -> IntelConfig:
        for what, names in (
            (
                "collections",
                [c.alias for c in self.collections] + [str(c.id) for c in self.collections],
            ),
            ("feeds", [f.name for f in self.feeds]),
        ):
            repeated = sorted({n for n in names if names.count(n) > 1})
            if repeated:
                raise ValueError(f"{what}: {', '.join(repeated)} named twice")
        return self

    def collection(self, key: str) -> Collection | None:
        """By id or alias."""
        return next((c for c in self.collections if key in (str(c.id), c.alias)), None)

    @classmethod
    def load(cls, path: Path | None) -> IntelConfig:
        if path is None:
            return cls()
        return load_yaml_model(cls, path, PolicyError, "the intelligence file", empty_ok=True)


def valid_name(value: str) -> bool:
    return re.fullmatch(_NAME, value) is not None
