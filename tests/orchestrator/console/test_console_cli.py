"""`garrison console set-password USER`: an Argon2id hash of a directory person's password in the
console's passwords file; nobody else gets one, and a short password is refused."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from orchestrator.cli import app

DIRECTORY = {"people": {"carol": {}}, "groups": {"soc-primary": ["alice"]}}


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    approvers = tmp_path / "approvers.yaml"
    approvers.write_text(yaml.safe_dump(DIRECTORY), encoding="utf-8")
    monkeypatch.setenv("GARRISON_APPROVERS_FILE", str(approvers))
    monkeypatch.setenv("GARRISON_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("GARRISON_CONSOLE__PASSWORDS_FILE", raising=False)
    return tmp_path / "data" / "console-passwords.yaml"


def test_set_password_hashes_into_the_data_dirs_file(env: Path) -> None:
    runner = CliRunner()
    done = runner.invoke(
        app, ["console", "set-password", "Alice", "--password-stdin"], input="a long passphrase\n"
    )
    assert done.exit_code == 0, done.output
    assert "console password set for alice" in done.output
    accounts = yaml.safe_load(env.read_text(encoding="utf-8"))["accounts"]
    assert list(accounts) == ["alice"] and accounts["alice"].startswith("$argon2id$")

    outsider = runner.invoke(
        app, ["console", "set-password", "mallory", "--password-stdin"], input="a long passphrase\n"
    )
    assert outsider.exit_code == 2 and "not in the approver directory" in outsider.output
    short = runner.invoke(
        app, ["console", "set-password", "carol", "--password-stdin"], input="short\n"
    )
    assert short.exit_code == 2 and "shorter than 12" in short.output
