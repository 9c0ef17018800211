"""Garrison's settings: the one place that reads the environment.

`GarrisonSettings` is read from `GARRISON_*` variables (nested fields with `__`, e.g.
`GARRISON_TEMPORAL__ADDRESS`); the Temporal block is also a settings class of its own, so the flat
names `GARRISON_TEMPORAL_ADDRESS`, `GARRISON_TEMPORAL_API_KEY`, ... work too (a nested name wins
over the flat one). Composition roots call `load_settings()`, which turns pydantic's validation
errors into a one-line `ConfigError` that names the offending environment variables.
"""

from __future__ import annotations

import os
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal, Self
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    DirectoryPath,
    Field,
    FilePath,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from orchestrator.model_settings import MODEL_ENV_PREFIX, ModelSettings, provider_colon_name

ENV_PREFIX = "GARRISON_"
TEMPORAL_ENV_PREFIX = "GARRISON_TEMPORAL_"
_TLS_CERT = f"{TEMPORAL_ENV_PREFIX}TLS_CERT"
_TLS_KEY = f"{TEMPORAL_ENV_PREFIX}TLS_KEY"


class ConfigError(Exception):
    """The configuration is wrong; the message is one line naming the variables to fix."""


class TemporalSettings(BaseSettings):
    """Where Temporal runs. No address means Garrison starts the embedded dev server."""

    model_config = SettingsConfigDict(env_prefix=TEMPORAL_ENV_PREFIX, extra="ignore")

    address: str | None = None
    namespace: str = Field(default="default", min_length=1)
    tls: bool = False
    tls_cert: FilePath | None = None
    tls_key: FilePath | None = None
    tls_ca: FilePath | None = None
    api_key: SecretStr | None = None
    task_queue_prefix: str = Field(default="garrison", min_length=1)
    embedded_port: int = Field(default=7233, ge=1, le=65535)
    embedded_ui_port: int = Field(default=8233, ge=1, le=65535)
    # Incident workflows a worker keeps in memory (the SDK's own default); one that wakes after
    # it left the cache is replayed from its history first.
    max_cached_workflows: int = Field(default=1000, ge=0)

    @field_validator("address")
    @classmethod
    def _blank_address_is_embedded(cls, value: str | None) -> str | None:
        # `GARRISON_TEMPORAL_ADDRESS=` (set but empty) means "no cluster", not "connect to ''".
        return value.strip() or None if value is not None else None

    @model_validator(mode="after")
    def _client_cert_needs_key(self) -> Self:
        if self.tls_cert is not None and self.tls_key is None:
            raise ValueError(f"{_TLS_KEY} is required when {_TLS_CERT} is set")
        if self.tls_key is not None and self.tls_cert is None:
            raise ValueError(f"{_TLS_CERT} is required when {_TLS_KEY} is set")
        return self

    @property
    def embedded(self) -> bool:
        """True when Garrison should run its own dev server."""
        return self.address is None

    @property
    def uses_tls(self) -> bool:
        """TLS is on when asked for or implied by a client certificate or a CA.

        With neither but an API key, the SDK turns TLS on itself (Temporal Cloud).
        """
        return self.tls or self.tls_cert is not None or self.tls_ca is not None


SLACK_ENV_PREFIX = "GARRISON_SLACK_"
SLACK_API_URL = "https://slack.com/api/"


class SlackSettings(BaseSettings):
    """Slack approvals: all of secret, token and channel, or none (then no Slack at all)."""

    model_config = SettingsConfigDict(env_prefix=SLACK_ENV_PREFIX, extra="ignore")

    signing_secret: SecretStr | None = None
    bot_token: SecretStr | None = None
    channel: str | None = Field(default=None, pattern=r"^[CDG][A-Z0-9]{2,20}$")
    api_url: str = Field(default=SLACK_API_URL, pattern=r"^https?://")

    @model_validator(mode="after")
    def _all_or_nothing(self) -> Self:
        given = {
            "SIGNING_SECRET": self.signing_secret,
            "BOT_TOKEN": self.bot_token,
            "CHANNEL": self.channel,
        }
        missing = [name for name, value in given.items() if not value]
        if 0 < len(missing) < len(given):
            names = ", ".join(f"{SLACK_ENV_PREFIX}{name}" for name in missing)
            raise ValueError(f"{names}: required when Slack is configured")
        return self

    @property
    def enabled(self) -> bool:
        return self.signing_secret is not None


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


class SyslogTransport(StrEnum):
    UNIX = "unix"  # a local datagram socket: /dev/log, the local daemon
    UDP = "udp"  # RFC 5426
    TCP = "tcp"  # RFC 6587, octet-counted frames


class FileAnchorTarget(BaseModel):
    """Anchors appended to a file, which `garrison audit verify` reads back."""

    model_config = ConfigDict(frozen=True)

    path: Path

    def __str__(self) -> str:
        return f"file:{self.path}"


class SyslogAnchorTarget(BaseModel):
    """Anchors sent to syslog: write-only, so verifying needs them exported back to a file."""

    model_config = ConfigDict(frozen=True)

    transport: SyslogTransport
    address: str  # the socket's path (unix) or the host
    port: int | None = None

    def __str__(self) -> str:
        if self.transport is SyslogTransport.UNIX:
            return f"syslog:{self.address}"
        scheme = "syslog" if self.transport is SyslogTransport.UDP else "syslog+tcp"
        host = f"[{self.address}]" if ":" in self.address else self.address
        return f"{scheme}://{host}:{self.port}"


AnchorTarget = FileAnchorTarget | SyslogAnchorTarget
SYSLOG_PORT = 514
_ANCHOR_FORMS = (
    "expected file:PATH, syslog, syslog:SOCKET, syslog://HOST[:PORT] or syslog+tcp://HOST[:PORT]"
)


def parse_anchor_target(value: str) -> AnchorTarget:
    """`GARRISON_AUDIT__ANCHOR`'s forms; a ValueError names what was expected."""
    text = value.strip()
    if text.startswith("file:"):
        path = text.removeprefix("file:")
        path = path.removeprefix("//") if path.startswith("///") else path
        if not path:
            raise ValueError(f"{value!r}: file: needs a path")
        return FileAnchorTarget(path=Path(path).expanduser())
    if text == "syslog":
        return SyslogAnchorTarget(transport=SyslogTransport.UNIX, address="/dev/log")
    for scheme, transport in (
        ("syslog://", SyslogTransport.UDP),
        ("syslog+tcp://", SyslogTransport.TCP),
    ):
        if text.startswith(scheme):
            parts = urlsplit("//" + text.removeprefix(scheme))
            try:
                port = parts.port
            except ValueError:
                raise ValueError(f"{value!r}: the port is not a number in 1-65535") from None
            if not parts.hostname or parts.path or parts.query or parts.fragment:
                raise ValueError(f"{value!r}: {_ANCHOR_FORMS}")
            return SyslogAnchorTarget(
                transport=transport, address=parts.hostname, port=port or SYSLOG_PORT
            )
    if text.startswith("syslog:") and len(text) > len("syslog:"):
        return SyslogAnchorTarget(
            transport=SyslogTransport.UNIX, address=text.removeprefix("syslog:")
        )
    raise ValueError(f"{value!r}: {_ANCHOR_FORMS}")


def _state_dir() -> Path:
    """The XDG base directory spec's state home: `$XDG_STATE_HOME` when it is an absolute path,
    else `~/.local/state`; Garrison's part of it is `garrison/`."""
    base = os.environ.get("XDG_STATE_HOME", "")
    root = Path(base) if Path(base).is_absolute() else Path.home() / ".local" / "state"
    return root / "garrison"


class AuditSettings(BaseModel):
    """Where and when the audit chain's head is anchored (docs/operators.md, "The audit log").

    No `anchor`: a file of the database's own, `<state_dir>/<digest of the database>/
    audit-anchor.jsonl`, outside the data directory."""

    anchor: str | None = None
    state_dir: Path = Field(default_factory=_state_dir)
    # Every process that opens the runtime anchors the head this often, when it moved: the bound
    # on how many seconds of entries a cut tail can lose undetected.
    anchor_interval_s: float = Field(default=60.0, gt=0, le=86_400)
    anchor_every: int = Field(default=100, ge=1)  # entries; also every incident close

    @field_validator("anchor")
    @classmethod
    def _anchor_form(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None  # set but empty: the default file
        parse_anchor_target(value)
        return value.strip()

    @property
    def target(self) -> AnchorTarget | None:
        """The configured anchor; None: the default file (its path depends on the database)."""
        return None if self.anchor is None else parse_anchor_target(self.anchor)


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


class GarrisonSettings(BaseSettings):
    """Everything a composition root needs to build Garrison."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_nested_delimiter="__", extra="ignore"
    )

    data_dir: Path = Path(".garrison")
    database_url: str | None = None
    policy_file: FilePath | None = None
    approvers_file: FilePath | None = None
    agent_identity: str = Field(default="garrison-agent", min_length=1)
    # The organisation's inventory (assets, identities, internal networks, protected entities) in
    # the recorded-incident format's `environment` shape, JSON or YAML: what risk is scored on.
    inventory_file: FilePath | None = None
    # A team's own analyst knowledge (docs/knowledge.md): a folder with a `manifest.yaml` and any
    # of the packaged knowledge files to replace. The agents read the same variable when their
    # tables are built; `load_settings` validates the files up front, naming file and field.
    knowledge_dir: DirectoryPath | None = None
    # A deployment's own playbook routing file (`playbooks/routing.yaml` is the packaged one).
    # The registry reads the same variable when it routes; `load_settings` validates it up front.
    playbook_routing: FilePath | None = None
    # A candidate following a deployment (`garrison shadow follow`, docs/shadow.md): the
    # deployment's database, only read; the candidate's results go to its own database.
    shadow_live_database_url: str | None = None
    # Which vendor serves a capability when several are configured: "edr=defender,identity=entra".
    vendors: str | None = None
    temporal: TemporalSettings = Field(default_factory=TemporalSettings)
    slack: SlackSettings = Field(default_factory=SlackSettings)
    poll: PollSettings = Field(default_factory=PollSettings)
    ingest: IngestSettings = Field(default_factory=IngestSettings)
    audit: AuditSettings = Field(default_factory=AuditSettings)
    activities: ActivitiesSettings = Field(default_factory=ActivitiesSettings)
    console: ConsoleSettings = Field(default_factory=ConsoleSettings)
    # Bearer tokens of the HTTP API: YAML `tokens: {identity: "sha256:<hex of the token>"}`.
    api_tokens_file: FilePath | None = None
    # Threat-intelligence sharing (docs/intel.md): the sharing policy, the TAXII collections
    # served and the partners' feeds pulled (`orchestrator.intel.config`).
    intel_file: FilePath | None = None
    # The agents' chat model, `provider:model` (`openai:gpt-4o-mini`, `ollama:llama3`); none: the
    # agents' deterministic reasoning. Loaded by the runtime (`orchestrator.runtime.load_model`).
    model: str | None = None
    models: ModelSettings = Field(default_factory=ModelSettings)  # GARRISON_MODEL_*: docs/models.md
    # The operators' instruments (docs/operators.md, "Health, metrics, logs and traces").
    # `garrison simulate` keeps the scorecards of the newest runs only (docs/operators.md)
    simulation_runs_keep: int = Field(default=50, ge=1, le=100_000)
    log_format: Literal["text", "json"] = "text"  # json: one JSON object per line
    log_level: Literal["debug", "info", "warning", "error"] = "warning"
    # A worker process's own `/metrics` port (the server answers `/metrics` on its API port).
    metrics_port: int | None = Field(default=None, ge=1, le=65535)
    # OTLP/HTTP traces; none (and no OTEL_EXPORTER_OTLP_ENDPOINT): no tracing at all.
    otlp_endpoint: str | None = None
    # Roles whose task queues `/readyz` needs polled, "triage,agents,actions"; none: the roles
    # this process runs itself ("" or "none": no queue is checked).
    ready_roles: str | None = None

    @field_validator("ready_roles")
    @classmethod
    def _known_roles(cls, value: str | None) -> str | None:
        if value is None:
            return None
        roles = [r.strip() for r in value.split(",") if r.strip() and r.strip() != "none"]
        unknown = sorted(set(roles) - {"triage", "agents", "actions"})
        if unknown:
            raise ValueError(f"{', '.join(unknown)}: roles are triage, agents, actions")
        return ",".join(roles)

    @field_validator("model")
    @classmethod
    def _model_is_provider_colon_name(cls, value: str | None) -> str | None:
        return provider_colon_name(value)

    @field_validator("models", mode="before")
    @classmethod
    def _merge_flat_model_env(cls, value: Any) -> Any:
        return ModelSettings(**value) if isinstance(value, dict) else value

    @field_validator("temporal", mode="before")
    @classmethod
    def _merge_flat_temporal_env(cls, value: Any) -> Any:
        # A nested value (`GARRISON_TEMPORAL__NAMESPACE` or a dict) arrives as a dict; building
        # the model from it still reads the flat `GARRISON_TEMPORAL_*` names for the other
        # fields, since init values override the environment in pydantic-settings.
        if isinstance(value, dict):
            return TemporalSettings(**value)
        return value

    @field_validator("slack", mode="before")
    @classmethod
    def _merge_flat_slack_env(cls, value: Any) -> Any:
        return SlackSettings(**value) if isinstance(value, dict) else value

    @property
    def effective_database_url(self) -> str:
        """The configured database URL, else a SQLite file in the data directory."""
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'garrison.db').as_posix()}"


def load_settings() -> GarrisonSettings:
    """Read settings from the environment; raise `ConfigError` naming the bad variables."""
    try:
        settings = GarrisonSettings()
    except ValidationError as error:
        raise ConfigError(describe_validation_error(error)) from None
    if settings.knowledge_dir is not None:
        check_knowledge(settings.knowledge_dir)
    if settings.playbook_routing is not None:
        check_playbook_routing(settings.playbook_routing)
    return settings


def check_playbook_routing(path: Path) -> None:
    """Load and validate a deployment's routing file (unknown playbook or category, bad key...):
    a `ConfigError` naming the file and the line, before anything runs."""
    from playbooks.registry import PlaybookLoadError, current_routing
    from playbooks.routing import RoutingError

    try:
        current_routing(path.expanduser().resolve())
    except (RoutingError, PlaybookLoadError) as error:
        raise ConfigError(
            f"invalid playbook routing (GARRISON_PLAYBOOK_ROUTING): {error}"
        ) from None


def check_knowledge(folder: Path) -> None:
    """Load and validate a team's knowledge folder (its files in place of the packaged ones,
    which CI validates): a bad file is a `ConfigError` naming the file and the field, before
    anything runs. Only when a folder is set, so that a light command never loads the agents;
    the result is cached, so the agents' own load in this process reuses it."""
    from agents.knowledge_base import KnowledgeError, load_knowledge

    try:
        load_knowledge(folder.expanduser().resolve())
    except KnowledgeError as error:
        raise ConfigError(f"invalid knowledge: {error}") from None


def describe_validation_error(error: ValidationError) -> str:
    """One line: `invalid configuration: GARRISON_X: problem; GARRISON_Y: problem`."""
    # Errors raised by a default factory come from that settings class, with unprefixed locations.
    prefix = {
        TemporalSettings.__name__: TEMPORAL_ENV_PREFIX,
        SlackSettings.__name__: SLACK_ENV_PREFIX,
        ModelSettings.__name__: MODEL_ENV_PREFIX,
    }.get(error.title, ENV_PREFIX)
    problems: list[str] = []
    for detail in error.errors(include_input=False, include_url=False):
        message = str(detail["msg"]).removeprefix("Value error, ")
        fields = [str(part) for part in detail["loc"] if not isinstance(part, int)]
        if fields and not message.startswith(ENV_PREFIX):
            problems.append(f"{_variable(prefix, fields)}: {message}")
        else:
            problems.append(message)  # model-level checks name their variables themselves
    return "invalid configuration: " + "; ".join(problems)


def _sections() -> frozenset[str]:
    """The settings' plain-model sections (`poll`, `ingest`, `audit`, `activities`): reachable
    only by their nested names, `GARRISON_AUDIT__ANCHOR` (Temporal and Slack also read flat
    names)."""
    return frozenset(
        name
        for name, field in GarrisonSettings.model_fields.items()
        if isinstance(field.annotation, type)
        and issubclass(field.annotation, BaseModel)
        and not issubclass(field.annotation, BaseSettings)
    )


_SECTIONS = _sections()


def _variable(prefix: str, fields: list[str]) -> str:
    # A section's fields are nested names all the way down: GARRISON_ACTIVITIES__STORE__HEARTBEAT_S
    if prefix == ENV_PREFIX and len(fields) > 1 and fields[0] in _SECTIONS:
        return f"{prefix}{'__'.join(fields).upper()}"
    return f"{prefix}{'_'.join(fields).upper()}"
