"""Operator YAML files (the approver directory, the API tokens): one-line errors naming the file
and the field, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.approvals.directory import ApproverDirectory, DirectoryError
from orchestrator.server.tokens import ApiTokens, TokensError


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("groups: [unclosed\n", "not valid YAML"),
        ("groups:\n  soc: {slack_users: [nope]}\n", "groups.soc.slack_users.0"),
        ("slack: {team_id: T0ABC}\n", "groups: Field required"),
    ],
)
def test_directory_errors_name_file_and_field(tmp_path: Path, text: str, needle: str) -> None:
    path = tmp_path / "approvers.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(DirectoryError) as error:
        ApproverDirectory.load(path)
    assert str(error.value).startswith(f"{path}: ") and needle in str(error.value)


def test_missing_directory_is_named(tmp_path: Path) -> None:
    with pytest.raises(DirectoryError, match="cannot read the approver directory"):
        ApproverDirectory.load(tmp_path / "absent.yaml")


def test_tokens_file_checks_digests_and_accepts_an_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "tokens.yaml"
    path.write_text("", encoding="utf-8")
    assert ApiTokens.load(path).tokens == {}
    path.write_text("tokens: {alice: plaintext}\n", encoding="utf-8")
    with pytest.raises(TokensError, match=r"tokens\.alice: expected 'sha256:"):
        ApiTokens.load(path)
    path.write_text("tokens: [alice]\n", encoding="utf-8")
    with pytest.raises(TokensError, match=f"{path}: tokens"):
        ApiTokens.load(path)
