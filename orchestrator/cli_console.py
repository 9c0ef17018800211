"""`garrison console ...`: the analysts' web console's accounts (the console itself is served by
`garrison server`, under /console)."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer

from orchestrator.cli_common import fail, out, settings_or_exit

if TYPE_CHECKING:
    from pathlib import Path

    from orchestrator.settings import GarrisonSettings

console_app = typer.Typer(help="The analysts' web console (served by `garrison server`).")


def passwords_path(settings: GarrisonSettings) -> Path:
    return settings.console.passwords_file or settings.data_dir / "console-passwords.yaml"


@console_app.command("set-password")
def set_password(
    user: Annotated[str, typer.Argument(help="A person of the approver directory.")],
    password_stdin: Annotated[
        bool,
        typer.Option(
            "--password-stdin", help="Read the password from standard input (automation)."
        ),
    ] = False,
) -> None:
    """Set USER's console password (Argon2id-hashed into the console's passwords file)."""
    from orchestrator.console.passwords import PasswordsError
    from orchestrator.console.passwords import set_password as store_password
    from orchestrator.runtime import load_directory
    from orchestrator.settings import ConfigError

    settings = settings_or_exit()
    try:
        directory = load_directory(settings, slack=False)
    except ConfigError as error:
        fail(str(error))
    if directory is None:
        fail("GARRISON_APPROVERS_FILE is required: console accounts are its people")
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("password", hide_input=True, confirmation_prompt=True)
    path = passwords_path(settings)
    try:
        identity = store_password(path, directory, user, password)
    except PasswordsError as error:
        fail(str(error))
    out.print(f"console password set for {identity} in {path}", markup=False)
