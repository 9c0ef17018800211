"""The store's hottest reads, built once: their values are bound per call (`bindparam`), so
SQLAlchemy computes each one's cache key once and finds it compiled on every later call."""

from __future__ import annotations

from sqlalchemy import bindparam
from sqlmodel import col, select

from orchestrator.store.tables import ActionRow, AlertRow, ApprovalRow, IncidentRow, TicketRow

ALERTS_OF = (  # incident_id
    select(AlertRow)
    .where(AlertRow.incident_id == bindparam("incident_id"))
    .order_by(col(AlertRow.time), col(AlertRow.id))
)
INCIDENT = select(IncidentRow).where(IncidentRow.id == bindparam("id"))
APPROVAL = select(ApprovalRow).where(ApprovalRow.id == bindparam("id"))
TICKET = select(TicketRow).where(TicketRow.incident_id == bindparam("incident_id"))
ACTION = select(ActionRow).where(ActionRow.business_key == bindparam("business_key"))
