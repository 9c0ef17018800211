"""The console's local accounts: Argon2id password hashes of people in the approver directory.

A YAML file beside the data (`GARRISON_CONSOLE__PASSWORDS_FILE`, else
`<data_dir>/console-passwords.yaml`), written by `garrison console set-password USER`:

    accounts:
      alice: "$argon2id$v=19$m=65536,t=3,p=4$..."

Hashing is argon2-cffi's `PasswordHasher` (Argon2id, its RFC 9106 low-memory profile): a
well-kept library, not a construction of ours. Only a person the approver directory names can
have an account; a name the directory no longer lists cannot sign in, whatever the file says.
The file is read again at every sign-in, so a password set while the server runs counts at once.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import yaml
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from pydantic import BaseModel, ConfigDict, Field

from orchestrator.approvals.directory import ApproverDirectory
from orchestrator.identity import IdentityError, canonical_identity
from orchestrator.yaml_files import load_yaml_model

MIN_PASSWORD = 12
_HASHER = PasswordHasher()
# Verified when the name has no account, so that a wrong name costs what a wrong password does.
_DUMMY_HASH = _HASHER.hash("no account has this password")


class PasswordsError(Exception):
    """The passwords file is malformed, or a password cannot be set; the message says why."""


class ConsoleAccounts(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    accounts: dict[str, str] = Field(default_factory=dict)


def directory_people(directory: ApproverDirectory) -> set[str]:
    """Everyone the directory names: its people and every group's members (canonical)."""
    named = set(directory.people)
    for group in directory.groups.values():
        named.update(group.members)
    return named


def load_accounts(path: Path) -> ConsoleAccounts:
    if not path.is_file():
        return ConsoleAccounts()
    return load_yaml_model(
        ConsoleAccounts, path, PasswordsError, "the console passwords", empty_ok=True
    )


def verify_sign_in(
    path: Path, directory: ApproverDirectory, user: str, password: str
) -> str | None:
    """The canonical identity `user` signs in as, or None (unknown, not in the directory, or a
    wrong password: the caller says no more than that)."""
    try:
        identity = canonical_identity(user)
    except IdentityError:
        identity = None
    try:
        stored = load_accounts(path).accounts.get(identity or "")
    except PasswordsError:
        stored = None
    known = identity is not None and stored is not None and identity in directory_people(directory)
    try:
        _HASHER.verify(stored if known and stored else _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        return None
    return identity if known else None


def set_password(path: Path, directory: ApproverDirectory, user: str, password: str) -> str:
    """Hash `password` for `user` (a person of the directory) into the file; the canonical name."""
    try:
        identity = canonical_identity(user)
    except IdentityError as error:
        raise PasswordsError(f"{user!r}: {error}") from None
    if identity not in directory_people(directory):
        raise PasswordsError(f"{identity} is not in the approver directory: add them there first")
    if len(password) < MIN_PASSWORD:
        raise PasswordsError(f"the password is shorter than {MIN_PASSWORD} characters")
    accounts = dict(load_accounts(path).accounts)
    accounts[identity] = _HASHER.hash(password)
    _write_private(path, yaml.safe_dump({"accounts": accounts}, sort_keys=True))
    return identity


def _write_private(path: Path, text: str) -> None:
    """Replace `path` atomically with a file only its owner reads."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".console-passwords-")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        os.chmod(temporary, 0o600)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
