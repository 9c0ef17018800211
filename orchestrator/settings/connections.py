"""Where Garrison connects: the Temporal cluster (or the embedded dev server) and Slack. Both are
settings classes of their own, so that their flat variable names (`GARRISON_TEMPORAL_ADDRESS`,
`GARRISON_SLACK_CHANNEL`) work beside the nested ones."""

from __future__ import annotations

from typing import Self

from pydantic import Field, FilePath, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

TEMPORAL_ENV_PREFIX = "GARRISON_TEMPORAL_"
_TLS_CERT = f"{TEMPORAL_ENV_PREFIX}TLS_CERT"
_TLS_KEY = f"{TEMPORAL_ENV_PREFIX}TLS_KEY"


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
