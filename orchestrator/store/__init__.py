"""Garrison's store: alerts, incidents, the action ledger, approvals, tickets and the audit chain,
on SQLite (embedded default) or Postgres (production), plus LangGraph checkpoints on the same DB.
`langgraph_checkpointer` is loaded on first use: the command line reads the store without LangGraph.
"""

from typing import TYPE_CHECKING, Any

from orchestrator.store.anchors import AnchorEntry, AnchorError, AuditAnchor, SyslogAnchor
from orchestrator.store.database import create_engine_for, normalise_url
from orchestrator.store.errors import ConflictError, NotFoundError, StoreError
from orchestrator.store.records import (
    ActionRecord,
    ActionStatus,
    AlertRecord,
    ApprovalDecision,
    ApprovalRecord,
    ApprovalStatus,
    AuditEvent,
    AuditRecord,
    AuditVerification,
    IncidentRecord,
    TicketRecord,
    TicketStatus,
)
from orchestrator.store.repository import Store

if TYPE_CHECKING:
    from orchestrator.store.checkpoints import langgraph_checkpointer


def __getattr__(name: str) -> Any:
    if name == "langgraph_checkpointer":
        from orchestrator.store.checkpoints import langgraph_checkpointer

        return langgraph_checkpointer
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "ActionRecord",
    "ActionStatus",
    "AlertRecord",
    "AnchorEntry",
    "AnchorError",
    "ApprovalDecision",
    "ApprovalRecord",
    "ApprovalStatus",
    "AuditAnchor",
    "AuditEvent",
    "AuditRecord",
    "AuditVerification",
    "ConflictError",
    "IncidentRecord",
    "NotFoundError",
    "Store",
    "StoreError",
    "SyslogAnchor",
    "TicketRecord",
    "TicketStatus",
    "create_engine_for",
    "langgraph_checkpointer",
    "normalise_url",
]
