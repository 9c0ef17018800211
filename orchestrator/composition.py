"""Building the shared pieces every composition root needs from settings: the store (with its
audit anchor) and the LangGraph checkpointer. Cheap to import: the graphs' types are collected only
when a checkpointer is opened, so the command line stays fast."""

from __future__ import annotations

import asyncio
import hashlib
import importlib
import inspect
import pkgutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from enum import Enum
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, assert_never

from pydantic import BaseModel

from orchestrator.settings import (
    AnchorTarget,
    ConfigError,
    FileAnchorTarget,
    GarrisonSettings,
    SyslogAnchorTarget,
)

if TYPE_CHECKING:
    from langgraph.checkpoint.base import BaseCheckpointSaver

    from orchestrator.store.anchors import AnchorSink
    from orchestrator.store.repository import Store

ANCHOR_FILE = "audit-anchor.jsonl"
DATABASE_ENV = "GARRISON_DATABASE_URL"


async def open_store(settings: GarrisonSettings) -> Store:
    """The store, with its audit head anchored outside the database's directory (`open_anchor`).
    Raises `ConfigError` for an unusable database URL or anchor, before connecting."""
    from orchestrator.store.repository import Store

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    anchor = await open_anchor(settings)
    return await Store.open(
        settings.effective_database_url, anchor=anchor, anchor_every=settings.audit.anchor_every
    )


def store_key(settings: GarrisonSettings) -> str:
    """A short digest naming the database: its SQLite file's real path, or its server's URL
    without the password. It names the default anchor's directory and tags syslog anchors, so
    two databases never share anchors by accident."""
    from orchestrator.store.database import normalise_url

    try:
        url = normalise_url(settings.effective_database_url)
    except ValueError as error:
        raise ConfigError(f"{DATABASE_ENV}: {error}") from None
    if url.get_backend_name() == "sqlite":
        identity = f"sqlite:{Path(url.database or '').expanduser().resolve()}"
    else:
        identity = url.render_as_string(hide_password=True)  # a new password: same database
    return hashlib.sha256(identity.encode()).hexdigest()[:16]


def anchor_target(settings: GarrisonSettings) -> AnchorTarget:
    """`GARRISON_AUDIT__ANCHOR`, else `<state dir>/<store key>/audit-anchor.jsonl`."""
    configured = settings.audit.target
    if configured is not None:
        return configured
    return FileAnchorTarget(path=settings.audit.state_dir / store_key(settings) / ANCHOR_FILE)


def database_dirs(settings: GarrisonSettings) -> list[Path]:
    """Where an anchor must not be: the data directory, and the SQLite file's directory. Whoever
    can rewrite the database there could rewrite an anchor beside it."""
    from orchestrator.store.database import normalise_url

    dirs = [settings.data_dir]
    url = normalise_url(settings.effective_database_url)
    if url.get_backend_name() == "sqlite" and url.database:
        dirs.append(Path(url.database).expanduser().parent)
    return dirs


async def open_anchor(settings: GarrisonSettings) -> AnchorSink:
    """The anchor sink, checked: a file is refused inside `database_dirs` or when writable by
    group or others, and created 0600 in a 0700 directory; syslog is write-only."""
    from orchestrator.store.anchors import AnchorError, AuditAnchor, SyslogAnchor

    target = anchor_target(settings)
    match target:
        case FileAnchorTarget():
            anchor = AuditAnchor(target.path)
            try:
                await asyncio.to_thread(anchor.secure, database_dirs(settings))
            except AnchorError as error:
                raise ConfigError(str(error)) from None
            return anchor
        case SyslogAnchorTarget():
            return SyslogAnchor(target, store_key(settings))
        case _:
            assert_never(target)


def _modules(*packages: ModuleType) -> list[ModuleType]:
    return [
        importlib.import_module(info.name)
        for package in packages
        for info in pkgutil.walk_packages(package.__path__, prefix=f"{package.__name__}.")
    ]


def _own_types(modules: list[ModuleType]) -> list[type]:
    """The pydantic models and enums defined in these modules: what graph state may hold. Only
    checkpoints made of these (and LangGraph's own safe types) are deserialised."""
    return [
        member
        for module in modules
        for _, member in inspect.getmembers(module, inspect.isclass)
        if member.__module__ == module.__name__ and issubclass(member, BaseModel | Enum)
    ]


@cache
def checkpoint_types() -> tuple[type, ...]:
    """The agents' and playbooks' own state, and the domain vocabulary they carry (never a
    vendor's). Imports every agent and playbook module, so it is built on first use, once."""
    import agents
    import playbooks
    import tools.actions
    import tools.models
    import tools.results

    return tuple(
        _own_types([tools.models, tools.actions, tools.results, *_modules(agents, playbooks)])
    )


@asynccontextmanager
async def open_checkpointer(settings: GarrisonSettings) -> AsyncIterator[BaseCheckpointSaver[str]]:
    from orchestrator.store.checkpoints import langgraph_checkpointer

    async with langgraph_checkpointer(settings.effective_database_url, checkpoint_types()) as saver:
        yield saver
