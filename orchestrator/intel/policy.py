"""The sharing policy: which TLP an export carries by default, and which internal entities may
leave at all (`GARRISON_INTEL_POLICY_FILE`, YAML):

    organisation: Example SOC        # the identity every exported object is created by
    default_tlp: amber
    internal:                         # the strictest-enough TLP at which each may leave, or never
      addresses: red                  # internal/private addresses and the assets' own addresses
      hosts: never                    # the inventory's host names
      accounts: never                 # people's and service accounts (personal data)

An internal entity leaves only in an export whose TLP is at least as strict as the level named
for it; `never` (the default for all three) keeps it home whatever the TLP. TLP:CLEAR is public:
nothing internal is ever allowed there, and a policy that says otherwise is refused.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from orchestrator.yaml_files import load_yaml_model


class PolicyError(Exception):
    """The sharing policy file is missing or malformed; the message names the problem."""


class Tlp(StrEnum):
    """TLP 2.0 (FIRST), from the least to the most restricted."""

    CLEAR = "clear"
    GREEN = "green"
    AMBER = "amber"
    AMBER_STRICT = "amber+strict"
    RED = "red"

    @property
    def rank(self) -> int:
        return list(Tlp).index(self)


Level = Tlp | Literal["never"]


class InternalRelease(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    addresses: Level = "never"
    hosts: Level = "never"
    accounts: Level = "never"

    @model_validator(mode="after")
    def _never_public(self) -> InternalRelease:
        for name in ("addresses", "hosts", "accounts"):
            if getattr(self, name) == Tlp.CLEAR:
                raise ValueError(f"internal.{name}: internal entities never leave at TLP:CLEAR")
        return self


class SharingPolicy(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    organisation: str = Field(default="Garrison", min_length=1, max_length=256)
    default_tlp: Tlp = Tlp.AMBER
    internal: InternalRelease = Field(default_factory=InternalRelease)

    def releases(self, kind: Literal["addresses", "hosts", "accounts"], tlp: Tlp) -> bool:
        """May this kind of internal entity leave in an export marked `tlp`?"""
        level = getattr(self.internal, kind)
        return level != "never" and tlp.rank >= Tlp(level).rank

    @classmethod
    def load(cls, path: Path | None) -> SharingPolicy:
        if path is None:
            return cls()
        return load_yaml_model(cls, path, PolicyError, "the sharing policy", empty_ok=True)
