"""What the CLI commands share: settings that fail cleanly, and the clients they open.

Light to import, like every `cli*` module: typer builds `garrison --help` from the commands'
signatures, so the heavy packages (Temporal, LangGraph, the agents, the store) are imported inside
the commands that use them.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, NoReturn

import typer
from rich.console import Console

if TYPE_CHECKING:
    from pathlib import Path

    from orchestrator.approvals.service import ApprovalService
    from orchestrator.settings import GarrisonSettings
    from orchestrator.store.repository import Store
    from simulations.loader import LoadedIncident

err = Console(stderr=True, soft_wrap=True)  # one problem, one line: never wrapped
# Tables fit a terminal; piped to a file or a CI log they get 160 columns rather than 80.
out = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 160)


def fail(message: str, code: int = 2) -> NoReturn:
    err.print(f"error: {message}", markup=False, highlight=False)
    raise typer.Exit(code)


def settings_or_exit() -> GarrisonSettings:
    from orchestrator.settings import ConfigError, load_settings

    try:
        settings = load_settings()
    except ConfigError as error:
        fail(str(error))
    from orchestrator.observability import logs

    logs.protect(settings)
    logs.configure(settings.log_format, settings.log_level.upper())
    return settings


def recorded_incidents(paths: list[Path]) -> list[LoadedIncident]:
    """The recorded incidents under `paths`; every broken one named on its own line and exit 2,
    or one line when there are none."""
    from simulations.loader import load_all

    loaded = load_all(paths)
    if loaded.problems:
        for problem in loaded.problems:
            err.print(str(problem), markup=False, highlight=False)
        raise typer.Exit(2)
    if not loaded.incidents:
        fail("no recorded incidents found under " + ", ".join(str(p) for p in paths))
    return loaded.incidents


@asynccontextmanager
async def open_store(settings: GarrisonSettings) -> AsyncIterator[Store]:
    from orchestrator import composition
    from orchestrator.settings import ConfigError

    try:
        store = await composition.open_store(settings)
    except ConfigError as error:  # an unusable anchor or database URL: one line
        fail(str(error))
    try:
        yield store
    finally:
        await store.close()


@asynccontextmanager
async def approval_service(settings: GarrisonSettings) -> AsyncIterator[ApprovalService]:
    """The approval service against the running system: the configured cluster, or the embedded
    server a `garrison worker` (or simulation) started; never a new server just to decide."""
    from orchestrator.approvals.directory import ApproverDirectory, DirectoryError
    from orchestrator.approvals.service import ApprovalService
    from orchestrator.temporal.client import connect
    from orchestrator.temporal.embedded import running_address

    if settings.approvers_file is None:
        fail("no approver directory: set GARRISON_APPROVERS_FILE to a YAML file of approver groups")
    try:
        directory = ApproverDirectory.load(settings.approvers_file)
    except DirectoryError as error:
        fail(str(error))
    address = settings.temporal.address or await running_address(settings)
    client = None
    unreachable = (
        "no running Garrison found: start `garrison worker` (or set GARRISON_TEMPORAL_ADDRESS);"
        " nothing was decided"
    )
    if address is not None:
        try:
            client = await connect(settings.temporal, address)
        except Exception as error:  # the SDK raises RuntimeError; the message is one line
            unreachable = (
                f"Temporal at {address} is unreachable ({type(error).__name__}):"
                " nothing was decided"
            )
    # Without Temporal the service still checks and audits the attempt, then refuses it.
    async with open_store(settings) as store:
        yield ApprovalService(
            client, store, directory, settings.agent_identity, unreachable=unreachable
        )


def configure_logging() -> None:
    """Warnings and errors to stderr, one line each, until the settings say otherwise
    (`settings_or_exit`: `GARRISON_LOG_FORMAT`, `GARRISON_LOG_LEVEL`, and the secrets to redact)."""
    from orchestrator.observability.logs import configure

    configure()
