"""Building the shared pieces every composition root needs from settings."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from enum import Enum
from types import ModuleType

from langgraph.checkpoint.base import BaseCheckpointSaver
from pydantic import BaseModel

import agents
import playbooks
import tools
from orchestrator.settings import GarrisonSettings
from orchestrator.store import AuditAnchor, Store
from orchestrator.store.checkpoints import langgraph_checkpointer

ANCHOR_FILE = "audit-anchor.jsonl"


async def open_store(settings: GarrisonSettings) -> Store:
    """The store, with its audit head anchored in a file beside the data, outside the database."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    anchor = AuditAnchor(settings.data_dir / ANCHOR_FILE)
    return await Store.open(settings.effective_database_url, anchor=anchor)


def _own_types(*packages: ModuleType) -> list[type]:
    """The pydantic models and enums defined in these packages: what graph state may hold. Only
    checkpoints made of these (and LangGraph's own safe types) are deserialised."""
    found: list[type] = []
    for package in packages:
        for info in pkgutil.walk_packages(package.__path__, prefix=f"{package.__name__}."):
            module = importlib.import_module(info.name)
            found += [
                member
                for _, member in inspect.getmembers(module, inspect.isclass)
                if member.__module__ == module.__name__ and issubclass(member, BaseModel | Enum)
            ]
    return found


CHECKPOINT_TYPES: list[type] = _own_types(tools, agents, playbooks)


@asynccontextmanager
async def open_checkpointer(settings: GarrisonSettings) -> AsyncIterator[BaseCheckpointSaver[str]]:
    async with langgraph_checkpointer(settings.effective_database_url, CHECKPOINT_TYPES) as saver:
        yield saver
