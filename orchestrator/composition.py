"""Building the shared pieces every composition root needs from settings: the store and the
LangGraph checkpointer. Cheap to import: the graphs' types are collected only when a checkpointer
is opened, so the command line stays fast."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from enum import Enum
from functools import cache
from types import ModuleType
from typing import TYPE_CHECKING

from pydantic import BaseModel

from orchestrator.settings import GarrisonSettings

if TYPE_CHECKING:
    from langgraph.checkpoint.base import BaseCheckpointSaver

    from orchestrator.store.repository import Store

ANCHOR_FILE = "audit-anchor.jsonl"


async def open_store(settings: GarrisonSettings) -> Store:
    """The store, with its audit head anchored in a file beside the data, outside the database."""
    from orchestrator.store.audit import AuditAnchor
    from orchestrator.store.repository import Store

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    anchor = AuditAnchor(settings.data_dir / ANCHOR_FILE)
    return await Store.open(settings.effective_database_url, anchor=anchor)


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
