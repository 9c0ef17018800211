"""Garrison's settings: the one place that reads the environment.

`GarrisonSettings` is read from `GARRISON_*` variables (nested fields with `__`, e.g.
`GARRISON_TEMPORAL__ADDRESS`); the Temporal block is also a settings class of its own, so the flat
names `GARRISON_TEMPORAL_ADDRESS`, `GARRISON_TEMPORAL_API_KEY`, ... work too (a nested name wins
over the flat one). Composition roots call `load_settings()`, which turns pydantic's validation
errors into a one-line `ConfigError` that names the offending environment variables.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, DirectoryPath, Field, FilePath, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from orchestrator.model_settings import MODEL_ENV_PREFIX, ModelSettings, provider_colon_name
from orchestrator.settings.audit import (
    SYSLOG_PORT,
    AnchorTarget,
    AuditSettings,
    FileAnchorTarget,
    SyslogAnchorTarget,
    SyslogTransport,
    parse_anchor_target,
)
from orchestrator.settings.connections import (
    SLACK_API_URL,
    SLACK_ENV_PREFIX,
    TEMPORAL_ENV_PREFIX,
    SlackSettings,
    TemporalSettings,
)
from orchestrator.settings.sections import (
    ENV_PREFIX,
    ActivitiesSettings,
    ConsoleSettings,
    IngestSettings,
    KindSettings,
    PollSettings,
)

__all__ = [
    "ENV_PREFIX",
    "SLACK_API_URL",
    "SLACK_ENV_PREFIX",
    "SYSLOG_PORT",
    "TEMPORAL_ENV_PREFIX",
    "ActivitiesSettings",
    "AnchorTarget",
    "AuditSettings",
    "ConfigError",
    "ConsoleSettings",
    "FileAnchorTarget",
    "GarrisonSettings",
    "IngestSettings",
    "KindSettings",
    "PollSettings",
    "SlackSettings",
    "SyslogAnchorTarget",
    "SyslogTransport",
    "TemporalSettings",
    "check_knowledge",
    "check_playbook_routing",
    "describe_validation_error",
    "load_settings",
    "parse_anchor_target",
]


class ConfigError(Exception):
    """The configuration is wrong; the message is one line naming the variables to fix."""


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
