"""The approver directory: which humans belong to which approver groups, on every channel.

A YAML file an operator maintains (`GARRISON_APPROVERS_FILE`):

    slack:
      team_id: T0123ABCD          # clicks from any other workspace are refused
      app_id: A0123ABCD           # optional: clicks routed through any other app are refused
    people:                       # one human, one identity, whatever the channel
      alice: {slack_user: U024BE7LH}
      bob: {slack_user: U0G9QF9C6}
    groups:
      soc-primary:
        members: [alice]          # identities used by the CLI and the API
        slack_usergroups: [S0614TZR7]   # on-call rotation, resolved with usergroups.users.list
      soc-secondary: [bob]        # short form: members only

A Slack click resolves to the person whose `slack_user` it is (so that Alice approving in Slack
and again from the CLI is one human, not two), else to `slack:<user id>`. Group membership comes
from the group's members, its `slack_users`, and the members of its Slack user groups.

Every name is held and compared in its canonical spelling (`orchestrator.identity`): `Alice`,
` alice` and `alice` are one person; a file naming one person twice in different spellings, or a
name that is not a usable identity, is refused when the file is loaded.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from orchestrator.identity import IdentityError, canonical_identity
from orchestrator.yaml_files import load_yaml_model

SLACK_USER = re.compile(r"[UW][A-Z0-9]{2,20}")
SLACK_USERGROUP = re.compile(r"S[A-Z0-9]{2,20}")
SLACK_TEAM = re.compile(r"[TE][A-Z0-9]{2,20}")
SLACK_APP = re.compile(r"A[A-Z0-9]{2,20}")
SLACK_PREFIX = "slack:"


def _canonical(name: str) -> str:
    try:
        return canonical_identity(name)
    except IdentityError as error:
        raise ValueError(f"{name!r}: {error}") from None


Identity = Annotated[str, AfterValidator(_canonical)]


class DirectoryError(Exception):
    """The approver directory file is missing or malformed; the message names the problem."""


class _Entry(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SlackWorkspace(_Entry):
    team_id: str = Field(pattern=SLACK_TEAM.pattern)
    app_id: str | None = Field(default=None, pattern=SLACK_APP.pattern)


class Person(_Entry):
    slack_user: str | None = Field(default=None, pattern=SLACK_USER.pattern)


def _members_shorthand(value: Any) -> Any:
    return {"members": value} if isinstance(value, list) else value


class ApproverGroup(_Entry):
    members: list[Identity] = Field(default_factory=list)
    slack_users: list[Annotated[str, Field(pattern=SLACK_USER.pattern)]] = Field(
        default_factory=list
    )
    slack_usergroups: list[Annotated[str, Field(pattern=SLACK_USERGROUP.pattern)]] = Field(
        default_factory=list
    )


class ApproverDirectory(_Entry):
    slack: SlackWorkspace | None = None
    people: dict[Identity, Person] = Field(default_factory=dict)
    groups: dict[str, Annotated[ApproverGroup, BeforeValidator(_members_shorthand)]]

    @model_validator(mode="before")
    @classmethod
    def _one_spelling_per_person(cls, data: Any) -> Any:
        people = data.get("people") if isinstance(data, dict) else None
        if isinstance(people, dict):
            seen: dict[str, str] = {}
            for name in people:
                key = _canonical(str(name))
                if key in seen:
                    raise ValueError(f"people: {seen[key]!r} and {name!r} are one identity")
                seen[key] = str(name)
        return data

    @model_validator(mode="after")
    def _one_person_per_slack_user(self) -> ApproverDirectory:
        owners: dict[str, str] = {}
        for name, person in self.people.items():
            if person.slack_user is None:
                continue
            if person.slack_user in owners:
                raise ValueError(
                    f"people: {owners[person.slack_user]!r} and {name!r} share Slack user"
                    f" {person.slack_user}"
                )
            owners[person.slack_user] = name
        return self

    def groups_of(self, user: str, slack_usergroups: frozenset[str] = frozenset()) -> set[str]:
        """The groups `user` (an identity, in any spelling) is in; `slack_usergroups` are the
        Slack user groups the caller found this user in, for groups that list user groups. An
        identity that names nobody (empty, ambiguous) is in no group."""
        try:
            wanted = canonical_identity(user)
        except IdentityError:
            return set()
        slack_user = self.slack_user_of(wanted)
        return {
            name
            for name, group in self.groups.items()
            if wanted in group.members
            or (slack_user is not None and slack_user in group.slack_users)
            or slack_usergroups.intersection(group.slack_usergroups)
        }

    def identity_of_slack_user(self, slack_user: str) -> str:
        """The person a Slack user id belongs to, else `slack:<id>` (canonical either way)."""
        for name, person in self.people.items():
            if person.slack_user == slack_user:
                return name
        return f"{SLACK_PREFIX}{slack_user}"

    def slack_user_of(self, identity: str) -> str | None:
        try:
            canonical = canonical_identity(identity)
        except IdentityError:
            return None
        if canonical.startswith(SLACK_PREFIX):
            return canonical.removeprefix(SLACK_PREFIX)
        person = self.people.get(canonical)
        return person.slack_user if person else None

    def usergroups_of(self, group: str) -> list[str]:
        entry = self.groups.get(group)
        return list(entry.slack_usergroups) if entry else []

    def slack_mentions(self, group: str) -> list[str]:
        """Slack ids to mention for a group: its user groups, else its people's Slack users."""
        entry = self.groups.get(group)
        if entry is None:
            return []
        if entry.slack_usergroups:
            return list(entry.slack_usergroups)
        users = [self.slack_user_of(m) for m in entry.members]
        return [*entry.slack_users, *(u for u in users if u)]

    @classmethod
    def load(cls, path: Path) -> ApproverDirectory:
        return load_yaml_model(cls, path, DirectoryError, "the approver directory")
