"""Garrison's store: alerts, incidents, the action ledger, approvals, tickets and the audit chain,
on SQLite (embedded default) or Postgres (production), plus LangGraph checkpoints on the same DB.
"""

from orchestrator.store.audit import AnchorEntry, AuditAnchor
from orchestrator.store.checkpoints import langgraph_checkpointer
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

__all__ = [
    "ActionRecord",
    "ActionStatus",
    "AlertRecord",
    "AnchorEntry",
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
    "TicketRecord",
    "TicketStatus",
    "create_engine_for",
    "langgraph_checkpointer",
    "normalise_url",
]
