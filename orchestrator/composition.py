"""Building the shared pieces every composition root needs from settings."""

from __future__ import annotations

from orchestrator.settings import GarrisonSettings
from orchestrator.store import AuditAnchor, Store

ANCHOR_FILE = "audit-anchor.jsonl"


async def open_store(settings: GarrisonSettings) -> Store:
    """The store, with its audit head anchored in a file beside the data, outside the database."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    anchor = AuditAnchor(settings.data_dir / ANCHOR_FILE)
    return await Store.open(settings.effective_database_url, anchor=anchor)
