"""Models of the recorded-incident format, version 1 (`shared/spec/recorded-incident-v1.md`).

Strict: unknown fields in the parts the spec defines are rejected, so a typo in someone else's
incident is an error that names the field rather than a silently ignored value.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from tools.actions import SCORED_KINDS, ActionKind
from tools.models import Alert, Category, Environment, ShortText, Verdict

INCIDENT_ID_PATTERN = r"^[a-z0-9][a-z0-9._-]{2,80}$"
SCHEMA = "recorded-incident/1"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Source(_Strict):
    dataset: str
    ref: str
    commit: str | None = None
    license: str
    attribution: str


class IndicatorSet(_Strict):
    ips: list[str] = Field(default_factory=list)
    domains: list[str] = Field(default_factory=list)
    sha256: list[str] = Field(default_factory=list)


class Compromised(_Strict):
    assets: list[str] = Field(default_factory=list)
    identities: list[str] = Field(default_factory=list)
    indicators: IndicatorSet = Field(default_factory=IndicatorSet)


class ExpectedAction(_Strict):
    kind: ActionKind
    target: ShortText

    @field_validator("kind")
    @classmethod
    def _scored_kind(cls, kind: ActionKind) -> ActionKind:
        if kind not in SCORED_KINDS:
            raise ValueError(f"{kind.value} is an inverse, not a scored action kind")
        return kind


class Truth(_Strict):
    verdict: Verdict
    category: Category
    techniques: list[str] = Field(default_factory=list)
    compromised: Compromised = Field(default_factory=Compromised)
    expected_actions: list[ExpectedAction] = Field(default_factory=list)
    acceptable_actions: list[ExpectedAction] = Field(default_factory=list)
    notes: str = ""


class AnalystPolicy(StrEnum):
    ORACLE = "oracle"
    APPROVE_ALL = "approve_all"
    DENY_ALL = "deny_all"
    ABSENT = "absent"


class AnalystSpec(_Strict):
    policy: AnalystPolicy = AnalystPolicy.ORACLE
    latency_s: float = Field(default=180.0, ge=0, le=7 * 24 * 3600)


class RecordedIncident(_Strict):
    schema_: Literal["recorded-incident/1"] = Field(alias="schema")
    id: str = Field(pattern=INCIDENT_ID_PATTERN)
    title: str
    source: Source
    environment: Environment
    alerts: list[Alert] = Field(min_length=1)
    truth: Truth
    analyst: AnalystSpec = Field(default_factory=AnalystSpec)

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
