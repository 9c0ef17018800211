"""The agents' model settings beyond `GARRISON_MODEL` itself (docs/models.md): an endpoint, a
model per role, and the seam's limits. Flat names under `GARRISON_MODEL_`:

    GARRISON_MODEL=openai:qwen2.5-7b-instruct
    GARRISON_MODEL_BASE_URL=http://127.0.0.1:8000/v1     # any OpenAI-compatible server
    GARRISON_MODEL_TRIAGE=anthropic:claude-haiku-4-5     # one role on another model
    GARRISON_MODEL_MAX_TOKENS_PER_INCIDENT=50000
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

MODEL_ENV_PREFIX = "GARRISON_MODEL_"


def provider_colon_name(value: str | None) -> str | None:
    """`provider:model` stripped, None when unset or empty; ValueError otherwise."""
    if value is None or not value.strip():
        return None
    provider, sep, name = value.strip().partition(":")
    if not sep or not provider or not name:
        raise ValueError(f"{value!r}: expected PROVIDER:MODEL, e.g. openai:gpt-4o-mini")
    return value.strip()


class ModelSettings(BaseSettings):
    """Read by `orchestrator.runtime.load_models`; inert while no model is configured."""

    model_config = SettingsConfigDict(env_prefix=MODEL_ENV_PREFIX, extra="ignore")

    # An OpenAI-compatible endpoint (vLLM, LM Studio, a gateway) or a provider's own base URL.
    base_url: str | None = Field(default=None, pattern=r"^https?://")
    # Per-role overrides of GARRISON_MODEL (`provider:model`); unset: the role uses GARRISON_MODEL.
    triage: str | None = None
    investigation: str | None = None
    remediation: str | None = None
    summaries: str | None = None
    timeout_s: float = Field(default=60.0, gt=0, le=600)  # one call
    max_attempts: int = Field(default=2, ge=1, le=5)  # calls per question (1 + retries)
    max_calls_per_incident: int = Field(default=24, ge=1, le=1_000)
    max_tokens_per_incident: int = Field(default=200_000, ge=1)
    max_cost_per_incident_usd: float | None = Field(default=None, ge=0)
    price_input_per_mtok: float = Field(default=0.0, ge=0)  # USD per million tokens, for the cost
    price_output_per_mtok: float = Field(default=0.0, ge=0)
    # model calls of one investigation's tool-using loop (GARRISON_MODEL_INVESTIGATION_MAX_STEPS)
    investigation_max_steps: int = Field(default=8, ge=1, le=50)
    # wall-clock seconds of that loop (GARRISON_MODEL_INVESTIGATION_DEADLINE_S); the agents'
    # activity has 600 s to close, the remediation's calls included
    investigation_deadline_s: float = Field(default=240.0, gt=0, le=480)
    # Record every call's request and response into this folder (`--record-model DIR`).
    record_dir: Path | None = None

    @field_validator("triage", "investigation", "remediation", "summaries")
    @classmethod
    def _provider_colon_name(cls, value: str | None) -> str | None:
        return provider_colon_name(value)
