"""Model selection by configuration (orchestrator/model_loading.py): a model per role, an
OpenAI-compatible endpoint by base URL, the seam's limits from settings, a recording folder, a
replay, and none configured meaning no model at all."""

from __future__ import annotations

from pathlib import Path

import pytest

from agents.model_client import AgentModels
from orchestrator.model_loading import ModelProvider, load_models
from orchestrator.model_settings import ModelSettings
from orchestrator.settings import ConfigError, GarrisonSettings

ABSENT = {"acme": ModelProvider("langchain-acme", "garrison_test_absent_package", "ChatAcme")}


def settings(tmp_path: Path, model: str | None = None, **models: object) -> GarrisonSettings:
    return GarrisonSettings.model_validate(
        {"data_dir": tmp_path, "model": model, "models": ModelSettings.model_validate(models)}
    )


def test_no_model_anywhere_means_no_models(tmp_path: Path) -> None:
    assert load_models(settings(tmp_path)) is None


def test_an_openai_compatible_endpoint_by_base_url_with_the_seams_retries_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("langchain_openai")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    models = load_models(
        settings(tmp_path, "openai:qwen", base_url="http://127.0.0.1:9/v1", timeout_s=7)
    )
    assert isinstance(models, AgentModels)
    chat = models.chats["triage"]
    assert chat is not None and chat is models.chats["remediation"]  # one client per spec
    assert getattr(chat, "openai_api_base", None) == "http://127.0.0.1:9/v1"
    assert getattr(chat, "max_retries", None) == 0  # retries are the seam's, capped
    assert getattr(chat, "request_timeout", None) == 7


def test_a_role_override_alone_gives_that_role_a_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("langchain_openai")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    models = load_models(settings(tmp_path, None, triage="openai:small"))
    assert models is not None
    assert models.for_incident("i-1", "triage") is not None
    assert models.for_incident("i-1", "remediation") is None
    assert models.names == {"triage": "openai:small"}


def test_a_missing_extra_of_a_role_names_its_variable_and_package(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as raised:
        load_models(settings(tmp_path, None, remediation="acme:rocket"), ABSENT)
    message = str(raised.value)
    assert message.startswith("GARRISON_MODEL_REMEDIATION=acme:rocket: ")
    assert "pip install langchain-acme" in message and "\n" not in message


def test_limits_come_from_settings_and_are_shared_per_incident(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("langchain_openai")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    config = settings(
        tmp_path,
        "openai:m",
        max_tokens_per_incident=99,
        max_cost_per_incident_usd=0.5,
        investigation_max_steps=3,
        investigation_deadline_s=30,
    )
    models = load_models(config, record_dir=tmp_path / "tape")
    assert models is not None and models.tape is not None and models.tape.mode == "record"
    assert models.limits.max_tokens == 99 and models.limits.max_cost_usd == 0.5
    assert models.limits.max_steps == 3 and models.limits.loop_deadline_s == 30
    triage = models.for_incident("i-1", "triage")
    remediation = models.for_incident("i-1", "remediation")
    other = models.for_incident("i-2", "triage")
    assert triage and remediation and other
    assert triage.ledger is remediation.ledger and triage.ledger is not other.ledger


def test_replay_needs_its_folder_and_no_provider(tmp_path: Path) -> None:
    models = load_models(settings(tmp_path, f"replay:{tmp_path}"))
    assert models is not None and models.tape is not None and models.tape.mode == "replay"
    client = models.for_incident("i-1", "investigation")
    assert client is not None and client.chat is None and client.replaying
    with pytest.raises(ConfigError, match="no model recording at"):
        load_models(settings(tmp_path, f"replay:{tmp_path / 'absent'}"))
