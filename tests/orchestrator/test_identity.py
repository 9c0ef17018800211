"""One human, one identity: every spelling of alice is alice; what names two people is refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.approvals.directory import ApproverDirectory, DirectoryError
from orchestrator.identity import IdentityError, canonical_identity, same_identity


@pytest.mark.parametrize(
    "spelling", ["alice", " alice", "Alice", "ALICE\t", "\u00a0alice", "\uff41lice"]
)
def test_every_spelling_of_alice_is_one_identity(spelling: str) -> None:
    assert canonical_identity(spelling) == "alice"
    assert same_identity(spelling, "alice")


def test_logins_keep_their_punctuation_and_slack_ids_their_case() -> None:
    assert canonical_identity("Alice.Smith@Corp.Example") == "alice.smith@corp.example"
    assert canonical_identity("CORP\\Alice") == "corp\\alice"
    assert canonical_identity("slack:u024be7lh") == "slack:U024BE7LH"
    assert canonical_identity("SLACK:U024BE7LH") == "slack:U024BE7LH"


@pytest.mark.parametrize(
    ("spelling", "why"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("ali\u200bce", "invisible"),  # zero-width space between letters
        ("alice\u202e", "invisible"),  # right-to-left override
        ("ali\x00ce", "control"),
        ("alice smith", "whitespace"),
        ("alice<script>", "characters"),
        ("a" * 129, "longer"),
        ("slack:not-an-id", "Slack user id"),
    ],
)
def test_what_could_name_two_people_or_nobody_is_refused(spelling: str, why: str) -> None:
    with pytest.raises(IdentityError, match=why):
        canonical_identity(spelling)
    assert not same_identity(spelling, spelling)


def test_the_directory_holds_and_answers_in_the_one_spelling() -> None:
    directory = ApproverDirectory.model_validate(
        {
            "people": {"Alice": {"slack_user": "U0ALICE"}},
            "groups": {"soc-primary": [" ALICE", "Bob"]},
        }
    )
    assert directory.groups["soc-primary"].members == ["alice", "bob"]
    for spelling in ("alice", " Alice", "ALICE"):
        assert directory.groups_of(spelling) == {"soc-primary"}
    assert directory.identity_of_slack_user("U0ALICE") == "alice"
    assert directory.slack_user_of(" Alice") == "U0ALICE"
    assert directory.groups_of("ali\u200bce") == set()


def test_a_directory_naming_one_person_twice_is_refused(tmp_path: Path) -> None:
    twice = tmp_path / "approvers.yaml"
    twice.write_text("people:\n  alice: {}\n  ' Alice': {}\ngroups:\n  soc: [alice]\n")
    with pytest.raises(DirectoryError, match="one identity"):
        ApproverDirectory.load(twice)
    invisible = tmp_path / "invisible.yaml"
    invisible.write_text('groups:\n  soc: ["ali\\u200bce"]\n')
    with pytest.raises(DirectoryError, match="invisible"):
        ApproverDirectory.load(invisible)
