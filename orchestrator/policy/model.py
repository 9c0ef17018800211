"""The policy document (weights, thresholds, approval tiers, deny rules), the facts a decision is
made on, and `load_policy`, which reads and validates a YAML policy file.

The document travels inside workflow inputs, so it is a frozen pydantic model that round-trips
through JSON; a malformed file is a `PolicyError` naming the file and the field path.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_core import ErrorDetails

from tools.actions import ActionKind, TargetKind
from tools.models import AssetKind, Criticality, ShortText
from tools.yaml_safe import safe_load

DEFAULT_POLICY_PATH = Path(__file__).with_name("default.yaml")

Points = Annotated[int, Field(ge=0, le=100)]


class PolicyError(Exception):
    """A policy file that cannot be used; the message names the file and the field."""


class _FieldError(ValueError):
    """A cross-field check that knows which field is wrong (pydantic only knows the model)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class TargetFacts(_Strict):
    """What is known about an action's target, established deterministically (never by a model)."""

    target_kind: TargetKind
    asset_kind: AssetKind | None = None
    criticality: Criticality | None = None
    privileged_identity: bool = False
    protected: bool = False
    known_entity: bool = Field(
        description="the target was extracted deterministically from the alerts or telemetry"
    )
    blast_radius: int = Field(default=1, ge=0, description="hosts or accounts affected")
    own_infrastructure: bool = False
    process_image: ShortText | None = Field(
        default=None,
        description="for a kill_process target: the image the EDR reports for that pid",
    )
    degraded: bool = Field(
        default=False,
        description="the incident's evidence has gaps (telemetry not read within the retry"
        " budget): approval required whatever the risk",
    )
    evidence_gaps: list[ShortText] = Field(
        default_factory=list, max_length=10, description="what could not be read"
    )


class TierName(StrEnum):
    STANDARD = "standard"  # one approver
    CRITICAL = "critical"  # two distinct approvers


class Tier(_Strict):
    sla_s: float = Field(gt=0, description="time the approver group has to decide")
    reminder_after_s: float = Field(gt=0)
    escalation_wait_s: float = Field(
        gt=0, description="time the escalation group gets after the SLA before the safe deny"
    )
    approver_group: ShortText = Field(min_length=1)
    escalation_group: ShortText = Field(min_length=1)

    @model_validator(mode="after")
    def _reminder_before_deadline(self) -> Tier:
        if self.reminder_after_s >= self.sla_s:
            raise _FieldError("reminder_after_s", f"must be < sla_s ({self.sla_s:g})")
        return self


# Kinds added after policies were written and recorded: a policy without their weights (a
# workflow's recorded input, replayed or still in flight, or a team's file from before) gets these,
# the packaged default's, rather than being refused. Every other kind must be weighed.
ADDED_LATER: dict[ActionKind, int] = {ActionKind.PATCH: 30, ActionKind.UNPATCH: 20}


class Weights(_Strict):
    """Risk points. The total is clamped to 0..100."""

    base: dict[ActionKind, Points] = Field(description="base risk of each action kind")
    criticality: dict[Criticality, Points] = Field(description="points per asset criticality")
    asset_kind: dict[AssetKind, Points] = Field(
        default_factory=dict, description="points per asset kind; a kind not listed adds 0"
    )
    privileged_identity: Points
    blast_radius_per_doubling: Points
    low_confidence: Points = Field(description="points * (1 - verdict confidence)")

    @model_validator(mode="before")
    @classmethod
    def _added_later(cls, data: object) -> object:
        if isinstance(data, dict) and isinstance(data.get("base"), dict):
            base = dict(data["base"])
            for kind, points in ADDED_LATER.items():
                if kind.value not in base and kind not in base:
                    base[kind.value] = points
            return {**data, "base": base}
        return data

    @model_validator(mode="after")
    def _complete(self) -> Weights:
        for kind in ActionKind:
            if kind not in self.base:
                raise _FieldError(f"base.{kind.value}", "missing weight for this action kind")
        for level in Criticality:
            if level not in self.criticality:
                raise _FieldError(f"criticality.{level.value}", "missing weight for this level")
        return self


class OwnInfrastructure(_Strict):
    """Garrison's own infrastructure: never the target of an action, approved or not. At start
    the runtime adds what the settings name (`orchestrator.policy.own_infrastructure`)."""

    hosts: list[ShortText] = Field(default_factory=list, description="asset ids or host names")
    addresses: list[ShortText] = Field(default_factory=list, description="IPs or CIDRs")
    domains: list[ShortText] = Field(default_factory=list, description="with their subdomains")
    identities: list[ShortText] = Field(default_factory=list, description="accounts")


class DenyRules(_Strict):
    min_cidr_prefix_v4: int = Field(default=16, ge=0, le=32)
    min_cidr_prefix_v6: int = Field(default=48, ge=0, le=128)
    never_touch: list[ShortText] = Field(
        default_factory=list,
        description="crown jewels and own infrastructure: host, identity, domain ids, IPs, CIDRs",
    )
    own_infrastructure: OwnInfrastructure = Field(default_factory=OwnInfrastructure)
    max_isolations_per_incident: int = Field(default=1, ge=0)
    critical_processes: list[ShortText] = Field(
        default_factory=list,
        description="process image names never killed (critical system processes)",
    )
    critical_pids: list[Annotated[int, Field(ge=0)]] = Field(
        default_factory=list, description="process ids never killed (the kernel's fixed ones)"
    )


class IsolationBreaker(_Strict):
    """The global isolation breaker (scenario L3): once more than `max_isolations` isolations
    have been requested across all incidents within `window_s`, every further isolation needs
    the two-approver tier, whatever its risk. An injected "isolate everything", or a detection
    gone wrong, stops at a human pair instead of taking the fleet off the network."""

    max_isolations: int | None = Field(
        default=10, ge=0, description="isolations per window before the breaker trips; null: off"
    )
    window_s: int = Field(default=3600, ge=60, le=7 * 86_400)


class StormScope(StrEnum):
    RULE = "rule"  # one storm incident per detection rule, whatever sent it
    RULE_PER_SOURCE = "rule_per_source"  # one per (sender, rule)


class StormRule(_Strict):
    """More than `hosts` distinct hosts alerting on one rule within `window_s` is a storm: from
    the alert that crosses the line on, that rule's alerts join one storm incident that lists them
    all, instead of opening an incident per host."""

    hosts: int = Field(default=20, ge=1, le=100_000)
    window_s: int = Field(default=300, ge=1, le=86_400)
    scope: StormScope = StormScope.RULE


class ReopenWhen(StrEnum):
    """When late alerts reopen a closed incident for another triage and response pass."""

    NEVER = "never"  # they only attach: stored as its members, audited, no new pass
    ON_NEW_ENTITY = "on_new_entity"  # one names a host or person the incident did not have
    # ... or one is more severe than the incident's triage: exactly when an open incident
    # would have been re-triaged for it (workflows/late_alerts.py)
    ON_NEW_ENTITY_OR_SEVERITY = "on_new_entity_or_severity"


class AfterClose(_Strict):
    """Alerts of a closed incident's group (late alerts, re-sends after close). They are stored
    as members of that incident, never as a second incident for the same thing, and audited
    (`incident.alerts_after_close`); `reopen` decides whether they also start another pass."""

    window_s: int = Field(
        default=3600,
        ge=0,
        le=30 * 86_400,
        description="a closed incident takes its group's alerts this long after it closed (alert "
        "time); a storm incident takes its rule's alerts for as long as the storm goes on",
    )
    reopen: ReopenWhen = ReopenWhen.ON_NEW_ENTITY
    storm_reopen: ReopenWhen = Field(
        default=ReopenWhen.NEVER,
        description="the same choice for a storm incident: by default a storm only attaches",
    )
    reopen_interval_s: int = Field(
        default=3600,
        ge=0,
        le=30 * 86_400,
        description="at most one reopen per incident within this interval: late alerts that "
        "would reopen it sooner attach (audited as held) and count at the next reopen",
    )


class IngestRules(_Strict):
    """How live ingestion groups alerts into incidents (`orchestrator/ingest/`)."""

    group_window_s: int = Field(
        default=1800,
        ge=0,
        le=7 * 86_400,
        description="an alert joins an open incident sharing a host or person within this gap",
    )
    storm: StormRule = Field(default_factory=StormRule)
    after_close: AfterClose = Field(default_factory=AfterClose)


class PolicyDocument(_Strict):
    version: ShortText = Field(min_length=1)
    threshold: int = Field(default=50, ge=0, le=100)
    two_approver_above: int = Field(default=80, ge=0, le=100)
    weights: Weights
    tiers: dict[str, Tier] = Field(description="`standard` (one approver), `critical` (two)")
    protected: list[ShortText] = Field(
        default_factory=list,
        description="entity ids never touched without approval (merged with the environment's)",
    )
    always_approve: dict[ActionKind, list[AssetKind]] = Field(
        default_factory=dict,
        description="action kinds that need approval on these asset kinds whatever the risk",
    )
    deny: DenyRules = Field(default_factory=DenyRules)
    breaker: IsolationBreaker = Field(default_factory=IsolationBreaker)
    ingest: IngestRules = Field(default_factory=IngestRules)

    @model_validator(mode="after")
    def _consistent(self) -> PolicyDocument:
        if self.two_approver_above < self.threshold:
            raise _FieldError("two_approver_above", f"must be >= threshold ({self.threshold})")
        for name in TierName:
            if name.value not in self.tiers:
                raise _FieldError(f"tiers.{name.value}", "missing tier")
        for key in self.tiers:
            if key not in set(TierName):
                raise _FieldError(f"tiers.{key}", "unknown tier (standard or critical)")
        return self


def load_policy(path: Path | None = None) -> PolicyDocument:
    """Read and validate a policy file; None reads the packaged default."""
    source = DEFAULT_POLICY_PATH if path is None else path
    try:
        text = source.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise PolicyError(f"{source}: cannot read the policy file: {error}") from None
    try:
        data = safe_load(text)
    except yaml.YAMLError as error:
        raise PolicyError(f"{source}: invalid YAML: {_yaml_problem(error)}") from None
    if not isinstance(data, dict):
        raise PolicyError(f"{source}: the policy must be a mapping of fields")
    try:
        return PolicyDocument.model_validate(data)
    except ValidationError as error:
        problems = "; ".join(_describe(detail) for detail in error.errors())
        raise PolicyError(f"{source}: {problems}") from None


def _yaml_problem(error: yaml.YAMLError) -> str:
    mark = getattr(error, "problem_mark", None)
    problem = getattr(error, "problem", None) or str(error).splitlines()[0]
    if mark is None:
        return str(problem)
    return f"line {mark.line + 1}, column {mark.column + 1}: {problem}"


_MESSAGES = {
    "greater_than": "must be > {gt}",
    "greater_than_equal": "must be >= {ge}",
    "less_than": "must be < {lt}",
    "less_than_equal": "must be <= {le}",
    "missing": "required",
    "extra_forbidden": "unknown field",
    "int_type": "must be an integer",
    "int_parsing": "must be an integer",
    "int_from_float": "must be an integer",
    "float_type": "must be a number",
    "float_parsing": "must be a number",
    "string_type": "must be a string",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "dict_type": "must be a mapping",
    "list_type": "must be a list",
    "string_too_short": "must not be empty",
}


def _describe(detail: ErrorDetails) -> str:
    """`tiers.critical.sla_s: must be > 0` from one pydantic error."""
    path = [str(part) for part in detail["loc"]]
    context = detail.get("ctx") or {}
    cause = context.get("error")
    if isinstance(cause, _FieldError):
        return f"{'.'.join([*path, cause.field])}: {cause.message}"
    if path and path[-1] == "[key]":
        # A bad mapping key (`weights.base.isolate_hots`): name the key, not pydantic's marker.
        return f"{'.'.join(path[:-1])}: not a valid key"
    template = _MESSAGES.get(detail["type"])
    message = template.format(**context) if template else detail["msg"]
    return f"{'.'.join(path) or '(document)'}: {message}"
