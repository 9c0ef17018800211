"""The agents' chat models from settings (docs/models.md): `GARRISON_MODEL=provider:model`, per
role `GARRISON_MODEL_<ROLE>`, an endpoint by `GARRISON_MODEL_BASE_URL`, the seam's limits, and a
recording (`GARRISON_MODEL_RECORD_DIR`) or a replay (`GARRISON_MODEL=replay:DIR`) of the calls.

Each provider's LangChain package is an optional extra of Garrison, imported only when a model of
that provider is configured; a missing one is a one-line `ConfigError` naming what to install."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrator.settings import ConfigError, GarrisonSettings

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel

    from agents.model_client import AgentModels

MODEL_ENV = "GARRISON_MODEL"
REPLAY = "replay"


@dataclass(frozen=True)
class ModelProvider:
    """A chat-model provider: its LangChain integration (an optional extra of Garrison)."""

    package: str  # what to install
    module: str
    chat_class: str
    extra: str = ""  # the Garrison extra that brings it; "": the provider's own name
    # The constructor takes `base_url`, `timeout` and `max_retries` (retries are the seam's).
    client_options: bool = False


PROVIDERS: Mapping[str, ModelProvider] = {
    "openai": ModelProvider("langchain-openai", "langchain_openai", "ChatOpenAI", "", True),
    "azure_openai": ModelProvider(
        "langchain-openai", "langchain_openai", "AzureChatOpenAI", "openai", True
    ),
    "anthropic": ModelProvider(
        "langchain-anthropic", "langchain_anthropic", "ChatAnthropic", "", True
    ),
    "ollama": ModelProvider("langchain-ollama", "langchain_ollama", "ChatOllama"),
}


def load_model(
    settings: GarrisonSettings,
    providers: Mapping[str, ModelProvider] = PROVIDERS,
    spec: str | None = None,
    variable: str = MODEL_ENV,
) -> BaseChatModel | None:
    """The chat model `spec` (default `GARRISON_MODEL`) names; None when unset. The provider's
    own variables (`OPENAI_API_KEY`, ...) are read by its package."""
    from langchain_core.language_models import BaseChatModel

    spec = spec if spec is not None else settings.model
    if spec is None or not spec.strip():
        return None
    name, _, model_name = spec.strip().partition(":")
    where = f"{variable}={spec}"
    provider = providers.get(name)
    if provider is None:
        known = ", ".join(sorted([*providers, REPLAY]))
        raise ConfigError(f"{where}: unknown provider {name!r}; providers are {known}")
    try:
        module = importlib.import_module(provider.module)
    except ImportError as error:
        extra = provider.extra or name
        raise ConfigError(
            f"{where}: the {name} provider needs the package {provider.package} "
            f"(pip install {provider.package}, or garrison[{extra}]): {error}"
        ) from None
    options: dict[str, Any] = {"model": model_name}
    config = settings.models
    if config.base_url:
        options["base_url"] = config.base_url
    if provider.client_options:
        options |= {"timeout": config.timeout_s, "max_retries": 0}
    try:
        chat = getattr(module, provider.chat_class)(**options)
    except Exception as error:  # a provider refusing its settings (a missing key): one clear line
        summary = str(error).strip().splitlines()[0] if str(error).strip() else ""
        raise ConfigError(
            f"{where}: {provider.chat_class} refused: {type(error).__name__}: {summary}"
        ) from None
    if not isinstance(chat, BaseChatModel):
        raise ConfigError(f"{where}: {provider.module}.{provider.chat_class} is not a chat model")
    return chat


def load_models(
    settings: GarrisonSettings,
    providers: Mapping[str, ModelProvider] = PROVIDERS,
    *,
    spec: str | None = None,
    record_dir: Path | None = None,
) -> AgentModels | None:
    """Every role's model (`spec` overrides `GARRISON_MODEL`), with the seam's limits; None when
    no role has one: the deterministic agents, exactly as without any model setting."""
    from agents.model_client import ROLES, AgentModels, ModelLimits, Tape

    config = settings.models
    default = spec if spec is not None else settings.model
    limits = ModelLimits(
        timeout_s=config.timeout_s,
        max_attempts=config.max_attempts,
        max_calls=config.max_calls_per_incident,
        max_tokens=config.max_tokens_per_incident,
        max_cost_usd=config.max_cost_per_incident_usd,
        price_input_per_mtok=config.price_input_per_mtok,
        price_output_per_mtok=config.price_output_per_mtok,
        max_steps=config.investigation_max_steps,
        loop_deadline_s=config.investigation_deadline_s,
    )
    if default is not None and default.strip().startswith(f"{REPLAY}:"):
        folder = Path(default.strip().removeprefix(f"{REPLAY}:")).expanduser()
        try:
            tape = Tape(folder, "replay")
        except FileNotFoundError as error:
            raise ConfigError(f"{MODEL_ENV}={default}: {error}") from None
        names = dict.fromkeys(ROLES, default.strip())
        return AgentModels(chats=dict.fromkeys(ROLES), names=names, limits=limits, tape=tape)
    chats: dict[str, BaseChatModel | None] = {}
    names: dict[str, str] = {}
    loaded: dict[str, BaseChatModel | None] = {}
    for role in ROLES:
        override = getattr(config, role)
        role_spec = override or default
        if role_spec is None:
            chats[role] = None
            continue
        variable = f"{MODEL_ENV}_{role.upper()}" if override else MODEL_ENV
        if role_spec not in loaded:
            loaded[role_spec] = load_model(settings, providers, role_spec, variable)
        chats[role] = loaded[role_spec]
        names[role] = role_spec
    if not any(chat is not None for chat in chats.values()):
        return None
    folder = record_dir or config.record_dir
    tape = Tape(folder.expanduser(), "record") if folder is not None else None
    return AgentModels(chats=chats, names=names, limits=limits, tape=tape)
