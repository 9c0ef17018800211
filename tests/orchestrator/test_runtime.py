"""The runtime's configuration checks: the chat model from `GARRISON_MODEL` (none, an unknown
provider, a provider whose package is missing), and Slack needing the approver directory. They
fail with one line naming the variable, in the library and in `garrison worker` and `server`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator.runtime import ModelProvider, load_directory, load_model
from orchestrator.settings import ConfigError, GarrisonSettings, SlackSettings
from tests.slack.stack import BOT_TOKEN, CHANNEL, SECRET

SLACK_ENV = {
    "GARRISON_SLACK_SIGNING_SECRET": SECRET,
    "GARRISON_SLACK_BOT_TOKEN": BOT_TOKEN,
    "GARRISON_SLACK_CHANNEL": CHANNEL,
}


def settings(tmp_path: Path, **values: object) -> GarrisonSettings:
    return GarrisonSettings.model_validate({"data_dir": tmp_path, **values})


def slack() -> SlackSettings:
    return SlackSettings.model_validate(
        {"signing_secret": SECRET, "bot_token": BOT_TOKEN, "channel": CHANNEL}
    )


def garrison(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("GARRISON_")}
    return subprocess.run(
        [sys.executable, "-m", "orchestrator.cli", *args],
        env=base | env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_no_model_setting_means_the_deterministic_agents(tmp_path: Path) -> None:
    assert load_model(settings(tmp_path)) is None
    assert load_model(settings(tmp_path, model="  ")) is None


def test_unknown_model_provider_names_the_variable_and_the_providers(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as raised:
        load_model(settings(tmp_path, model="watson:granite"))

    message = str(raised.value)
    assert "GARRISON_MODEL=watson:granite" in message
    assert "unknown provider 'watson'" in message
    assert "openai" in message and "ollama" in message


def test_missing_provider_package_names_the_variable_and_the_package(tmp_path: Path) -> None:
    absent = {"acme": ModelProvider("langchain-acme", "garrison_test_absent_package", "ChatAcme")}

    with pytest.raises(ConfigError) as raised:
        load_model(settings(tmp_path, model="acme:rocket-1"), absent)

    message = str(raised.value)
    assert "GARRISON_MODEL=acme:rocket-1" in message
    assert "pip install langchain-acme" in message
    assert "\n" not in message


def test_openai_without_its_package_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The dev extra installs langchain-openai; a None in sys.modules makes its import fail as on
    # a machine without it.
    monkeypatch.setitem(sys.modules, "langchain_openai", None)
    with pytest.raises(ConfigError, match=r"GARRISON_MODEL=openai:gpt-4o-mini: .*langchain-openai"):
        load_model(settings(tmp_path, model="openai:gpt-4o-mini"))


def test_malformed_model_setting_is_refused_when_settings_load(tmp_path: Path) -> None:
    result = garrison(
        "worker", "--incidents", "does-not-matter",
        env={"GARRISON_DATA_DIR": str(tmp_path), "GARRISON_MODEL": "gpt-4o"},
    )  # fmt: skip
    assert result.returncode == 2
    assert "GARRISON_MODEL" in result.stderr and "PROVIDER:MODEL" in result.stderr
    assert "Traceback" not in result.stderr


def test_slack_without_approver_directory_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="GARRISON_APPROVERS_FILE"):
        load_directory(settings(tmp_path, slack=slack()))
    # Simulations log approvals whatever the Slack settings: no directory needed then.
    assert load_directory(settings(tmp_path, slack=slack()), slack=False) is None


INCIDENT = Path(__file__).parents[2] / "simulations" / "incidents" / "otrf-lsass-procdump-acct01"


@pytest.mark.parametrize("command", [["worker", "--queues", "triage"], ["server", "--no-workers"]])
def test_worker_and_server_with_slack_need_the_approver_directory(
    command: list[str], tmp_path: Path
) -> None:
    env = SLACK_ENV | {"GARRISON_DATA_DIR": str(tmp_path)}
    result = garrison(*command, "--incidents", str(INCIDENT), env=env)

    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "GARRISON_APPROVERS_FILE" in lines[0], result.stderr


def test_worker_with_an_unusable_model_stops_with_one_line(tmp_path: Path) -> None:
    env = {"GARRISON_DATA_DIR": str(tmp_path), "GARRISON_MODEL": "nonesuch:large"}
    result = garrison("worker", "--incidents", str(INCIDENT), env=env)

    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "GARRISON_MODEL=nonesuch:large" in lines[0], result.stderr
