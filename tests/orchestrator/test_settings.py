"""Settings: defaults, flat and nested environment names, and one-line errors naming variables."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from orchestrator.settings import ConfigError, GarrisonSettings, TemporalSettings, load_settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in os.environ:
        if name.startswith("GARRISON_"):
            monkeypatch.delenv(name)
    return monkeypatch


def config_error(monkeypatch: pytest.MonkeyPatch, **env: str) -> str:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as error:
        load_settings()
    message = str(error.value)
    assert "\n" not in message
    return message


def test_defaults_run_embedded_in_a_local_data_dir() -> None:
    settings = load_settings()

    assert settings.data_dir == Path(".garrison")
    assert settings.effective_database_url == "sqlite+aiosqlite:///.garrison/garrison.db"
    assert settings.policy_file is None
    assert settings.approvers_file is None
    assert settings.agent_identity == "garrison-agent"
    assert settings.temporal.address is None
    assert settings.temporal.embedded
    assert settings.temporal.namespace == "default"
    assert not settings.temporal.uses_tls
    assert settings.temporal.api_key is None
    assert settings.temporal.task_queue_prefix == "garrison"
    assert (settings.temporal.embedded_port, settings.temporal.embedded_ui_port) == (7233, 8233)


def test_database_url_follows_data_dir_unless_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GARRISON_DATA_DIR", "/var/lib/garrison")
    assert load_settings().effective_database_url == (
        "sqlite+aiosqlite:////var/lib/garrison/garrison.db"
    )

    monkeypatch.setenv("GARRISON_DATABASE_URL", "postgresql+psycopg://db/garrison")
    assert load_settings().effective_database_url == "postgresql+psycopg://db/garrison"


def test_flat_temporal_names_configure_a_cluster(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GARRISON_TEMPORAL_ADDRESS", "garrison.a1b2c.tmprl.cloud:7233")
    monkeypatch.setenv("GARRISON_TEMPORAL_NAMESPACE", "garrison.a1b2c")
    monkeypatch.setenv("GARRISON_TEMPORAL_API_KEY", "sekret")
    monkeypatch.setenv("GARRISON_TEMPORAL_TASK_QUEUE_PREFIX", "soc")

    temporal = load_settings().temporal

    assert temporal.address == "garrison.a1b2c.tmprl.cloud:7233"
    assert not temporal.embedded
    assert temporal.namespace == "garrison.a1b2c"
    assert temporal.api_key is not None and temporal.api_key.get_secret_value() == "sekret"
    assert "sekret" not in repr(temporal)
    assert temporal.task_queue_prefix == "soc"


def test_nested_names_combine_with_flat_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GARRISON_TEMPORAL_ADDRESS", "temporal:7233")
    monkeypatch.setenv("GARRISON_TEMPORAL__NAMESPACE", "soc")
    monkeypatch.setenv("GARRISON_TEMPORAL_EMBEDDED_PORT", "7000")
    monkeypatch.setenv("GARRISON_TEMPORAL__EMBEDDED_PORT", "7100")

    temporal = load_settings().temporal

    assert (temporal.address, temporal.namespace) == ("temporal:7233", "soc")
    assert temporal.embedded_port == 7100  # the nested name wins


def test_empty_address_means_embedded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GARRISON_TEMPORAL_ADDRESS", "")
    assert load_settings().temporal.embedded


def test_tls_files_are_read_from_existing_paths(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in ("cert", "key", "ca"):
        (tmp_path / f"{name}.pem").write_text(name)
        monkeypatch.setenv(f"GARRISON_TEMPORAL_TLS_{name.upper()}", str(tmp_path / f"{name}.pem"))

    temporal = load_settings().temporal

    assert temporal.tls_cert == tmp_path / "cert.pem"
    assert temporal.uses_tls


def test_bad_type_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    message = config_error(monkeypatch, GARRISON_TEMPORAL_EMBEDDED_PORT="seven")
    assert message.startswith("invalid configuration: GARRISON_TEMPORAL_EMBEDDED_PORT: ")


def test_bad_nested_value_names_the_flat_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    message = config_error(monkeypatch, GARRISON_TEMPORAL__TLS="maybe")
    assert message.startswith("invalid configuration: GARRISON_TEMPORAL_TLS: ")


def test_cert_without_key_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "cert.pem").write_text("cert")
    message = config_error(monkeypatch, GARRISON_TEMPORAL_TLS_CERT=str(tmp_path / "cert.pem"))
    assert message == (
        "invalid configuration: "
        "GARRISON_TEMPORAL_TLS_KEY is required when GARRISON_TEMPORAL_TLS_CERT is set"
    )


def test_missing_files_name_every_variable(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    message = config_error(
        monkeypatch,
        GARRISON_POLICY_FILE=str(tmp_path / "no-policy.yaml"),
        GARRISON_APPROVERS_FILE=str(tmp_path / "no-approvers.yaml"),
    )
    assert "GARRISON_POLICY_FILE: " in message
    assert "GARRISON_APPROVERS_FILE: " in message


def test_secret_values_stay_out_of_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    message = config_error(monkeypatch, GARRISON_TEMPORAL_EMBEDDED_UI_PORT="hunter2")
    assert "hunter2" not in message


def test_settings_can_be_built_in_code() -> None:
    settings = GarrisonSettings(
        data_dir=Path("/srv/g"), temporal=TemporalSettings(address="t:7233")
    )
    assert settings.temporal.address == "t:7233"
    assert settings.effective_database_url.endswith("/srv/g/garrison.db")
