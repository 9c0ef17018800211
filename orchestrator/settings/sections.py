"""The plain sections of the settings, reachable by their nested names only
(`GARRISON_ACTIVITIES__STORE__HEARTBEAT_S`): pull mode, ingestion, activity timeouts per kind, and
the analysts' console."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    FilePath,
    SecretStr,
    field_validator,
    model_validator,
)

ENV_PREFIX = "GARRISON_"


class PollSettings(BaseModel):
    """Pull mode: poll the vendors' alert APIs on a Temporal Schedule. A source is polled only
    when its interval is set (`GARRISON_POLL__FALCON_INTERVAL_S=60`); its credentials are the
    vendor's own settings (`GARRISON_CROWDSTRIKE_*` for Falcon, `GARRISON_ENTRA_*` for Graph)."""

    falcon_interval_s: int | None = Field(default=None, ge=5)
    graph_interval_s: int | None = Field(default=None, ge=5)
    page_size: int = Field(default=500, ge=1, le=1000)
    max_pages: int = Field(default=10, ge=1)
    max_requests: int = Field(default=50, ge=1)  # per poll, the vendor's rate budget
    initial_lookback_s: int = Field(default=86_400, ge=0)  # first poll; 0: all retained alerts
    settle_s: int = Field(default=30, ge=0)  # read alerts last updated at least this long ago
    activity_timeout_s: int = Field(default=300, ge=1)
    max_attempts: int = Field(default=5, ge=1)


class IngestSettings(BaseModel):
    """Live ingestion (`docs/ingestion.md`): signed-webhook senders, and the dispatcher that
    signals incidents' workflows after their alerts are committed."""

    # Senders that sign webhooks: YAML `sources: {name: {secret: ..., shape: ...}}`.
    sources_file: FilePath | None = None
    # The first part of every live incident's id (`<scope>-<random>`, `<scope>--<correlation>`):
    # deployments sharing one Temporal namespace each need their own.
    scope: str = Field(default="live", pattern=r"^[a-z0-9][a-z0-9_]{0,31}$")
    # Accept and store alerts but start no workflows (Temporal maintenance): they wait, committed,
    # and are dispatched when a process without this setting sweeps.
    dispatch_paused: bool = False
    sweep_s: float = Field(default=2.0, gt=0, le=300)
    # A running incident's workflow is signalled at most once per this many seconds: the alerts
    # of a burst arrive in one signal (one workflow task) rather than one each. 0 (the default):
    # no gap. Off by default while two dispatchers (a server's, a triage worker's) that both take
    # an incident's late alerts each audit their attachment: a gap keeps rows unsignalled longer,
    # which widens that race (docs/operators.md).
    signal_gap_s: float = Field(default=0.0, ge=0, le=60)
    # Answer 429 once more committed alerts than this wait for their workflows.
    max_backlog: int = Field(default=100_000, ge=1)


class KindSettings(BaseModel):
    """Timeouts and retries of one kind of activity (docs/operators.md, "Timeouts, heartbeats and
    retries"). A worker that dies mid-activity is noticed after `heartbeat_s`; `start_to_close_s`
    only bounds an activity whose worker is alive (a slow vendor)."""

    model_config = ConfigDict(frozen=True)

    start_to_close_s: float = Field(gt=0, le=86_400)
    heartbeat_s: float | None = Field(default=15.0, gt=0, le=3_600)
    retry_initial_s: float = Field(default=1.0, gt=0, le=3_600)
    retry_max_s: float = Field(default=60.0, gt=0, le=86_400)
    max_attempts: int = Field(default=8, ge=0, le=1_000)  # 0: without limit

    @field_validator("heartbeat_s", mode="before")
    @classmethod
    def _none_is_no_heartbeat(cls, value: Any) -> Any:
        # `...__HEARTBEAT_S=` or `=none`: no heartbeat timeout (a dead worker costs start_to_close).
        if isinstance(value, str) and value.strip().lower() in ("", "none"):
            return None
        return value


# Each kind's own defaults; a variable set for a kind overrides only its own field.
_KIND_DEFAULTS: dict[str, dict[str, float]] = {
    "vendor_reads": {"start_to_close_s": 120.0, "retry_max_s": 30.0},
    "vendor_actions": {"start_to_close_s": 600.0},  # a PAN-OS commit may take minutes
    "tickets": {"start_to_close_s": 120.0},
    "agents": {"start_to_close_s": 600.0, "heartbeat_s": 30.0},  # graphs, with their reads
    "store": {"start_to_close_s": 60.0, "retry_max_s": 30.0},
}


def _kind(name: str) -> Any:
    return Field(default_factory=lambda: KindSettings.model_validate(_KIND_DEFAULTS[name]))


class ActivitiesSettings(BaseModel):
    """Per activity kind: `GARRISON_ACTIVITIES__VENDOR_ACTIONS__HEARTBEAT_S=10`."""

    vendor_reads: KindSettings = _kind("vendor_reads")
    vendor_actions: KindSettings = _kind("vendor_actions")
    tickets: KindSettings = _kind("tickets")
    agents: KindSettings = _kind("agents")
    store: KindSettings = _kind("store")

    @model_validator(mode="before")
    @classmethod
    def _kind_defaults(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        merged = dict(data)
        for name, defaults in _KIND_DEFAULTS.items():
            given = merged.get(name)
            if isinstance(given, dict):
                merged[name] = defaults | given
        return merged

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        problems: list[str] = []
        for name in type(self).model_fields:
            kind: KindSettings = getattr(self, name)
            variable = f"{ENV_PREFIX}ACTIVITIES__{name.upper()}__"
            if kind.heartbeat_s is not None and kind.heartbeat_s >= kind.start_to_close_s:
                problems.append(
                    f"{variable}HEARTBEAT_S: {kind.heartbeat_s:g} must be below "
                    f"{variable}START_TO_CLOSE_S ({kind.start_to_close_s:g})"
                )
            if kind.retry_initial_s > kind.retry_max_s:
                problems.append(
                    f"{variable}RETRY_INITIAL_S: {kind.retry_initial_s:g} must not exceed "
                    f"{variable}RETRY_MAX_S ({kind.retry_max_s:g})"
                )
        if problems:
            raise ValueError("; ".join(problems))
        return self


class ConsoleSettings(BaseModel):
    """The analysts' web console served by `garrison server` (docs/analysts.md, "The console").

    `cookie_secure` off is for a plain-http server on the loopback only (local development):
    anywhere else the session cookie must travel over TLS alone."""

    # Argon2id hashes of the console's local accounts (`garrison console set-password USER`);
    # none: `<data_dir>/console-passwords.yaml`.
    passwords_file: Path | None = None
    cookie_secure: bool = True
    session_idle_s: int = Field(default=1_800, ge=60, le=86_400)  # signed out after this idle
    session_max_s: int = Field(default=43_200, ge=60, le=604_800)  # and after this in all
    refresh_s: float = Field(default=15.0, ge=1, le=3_600)  # the lists refresh themselves
    # The Temporal Web UI the incident page links to; none: the embedded server's, if any.
    temporal_ui_url: str | None = Field(default=None, pattern=r"^https?://")
    # The committed scorecards (`*.json`) a kept simulation run may be diffed against; none: the
    # package's `simulations/baselines`.
    baselines_dir: Path | None = None
    # Sign-in through an OpenID Connect provider, found by its discovery URL (docs/analysts.md):
    # the value of `oidc_claim` in the ID token names the person of the approver directory.
    oidc_discovery_url: str | None = Field(default=None, pattern=r"^https?://")
    oidc_client_id: str | None = None
    oidc_client_secret: SecretStr | None = None  # none: a public client (PKCE alone)
    oidc_claim: Literal["email", "preferred_username"] = "email"
    oidc_scopes: str = "openid email profile"
    # The callback URL registered with the provider; none: <request base>/console/oidc/callback.
    oidc_redirect_url: str | None = Field(default=None, pattern=r"^https?://")

    @model_validator(mode="after")
    def _oidc_needs_a_client_id(self) -> Self:
        if self.oidc_discovery_url and not self.oidc_client_id:
            raise ValueError("oidc_discovery_url is set: set oidc_client_id too")
        return self
