"""The approver directory: which humans belong to which approver groups.

A YAML file an operator maintains (`GARRISON_APPROVERS_FILE`):

    groups:
      soc-primary: [alice, U024BE7LH]
      soc-secondary: [bob]
"""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError


class DirectoryError(Exception):
    """The approver directory file is missing or malformed; the message names the problem."""


class ApproverDirectory(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    groups: dict[str, list[str]]

    def groups_of(self, user: str) -> set[str]:
        wanted = user.strip().lower()
        return {g for g, members in self.groups.items() if wanted in {m.lower() for m in members}}

    @classmethod
    def load(cls, path: Path) -> ApproverDirectory:
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        except OSError as error:
            raise DirectoryError(f"{path}: cannot read the approver directory: {error}") from None
        except yaml.YAMLError as error:
            raise DirectoryError(f"{path}: not valid YAML: {error}") from None
        try:
            return cls.model_validate(raw)
        except ValidationError as error:
            first = error.errors()[0]
            field = ".".join(str(p) for p in first["loc"]) or "(top level)"
            raise DirectoryError(f"{path}: {field}: {first['msg']}") from None
