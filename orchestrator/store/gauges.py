"""What the store knows as state, read for `/metrics` at scrape time: open incidents by status,
pending approvals and the oldest one's age, and the action ledger by kind and status. State read
from the store is the same whichever process is scraped, so a deployment of many workers needs
no per-process count of it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from orchestrator.store.records import ApprovalStatus
from orchestrator.store.tables import ActionRow, ApprovalRow, IncidentRow
from orchestrator.store.transactions import Transactions
from tools.models import IncidentStatus


@dataclass(frozen=True)
class StoreGauges:
    incidents_open: dict[str, int]  # status -> count, closed ones left out
    approvals_pending: int
    oldest_pending_since: datetime | None
    actions: dict[tuple[str, str], int]  # (kind, status) -> ledger rows


class Gauges:
    def __init__(self, db: Transactions) -> None:
        self._db = db

    async def read(self) -> StoreGauges:
        async def work(session: AsyncSession) -> StoreGauges:
            incidents = await session.exec(
                select(IncidentRow.status, func.count())
                .where(IncidentRow.status != IncidentStatus.CLOSED.value)
                .group_by(col(IncidentRow.status))
            )
            pending = (
                await session.exec(
                    select(func.count(), func.min(ApprovalRow.created_at)).where(
                        ApprovalRow.status == ApprovalStatus.PENDING.value
                    )
                )
            ).one()
            actions = await session.exec(
                select(ActionRow.kind, ActionRow.status, func.count()).group_by(
                    col(ActionRow.kind), col(ActionRow.status)
                )
            )
            oldest = pending[1]
            if isinstance(oldest, str):  # SQLite's aggregate bypasses the column's type
                oldest = datetime.fromisoformat(oldest)
            if oldest is not None and oldest.tzinfo is None:
                oldest = oldest.replace(tzinfo=UTC)
            return StoreGauges(
                incidents_open={status: count for status, count in incidents.all()},
                approvals_pending=int(pending[0]),
                oldest_pending_since=oldest,
                actions={(kind, status): count for kind, status, count in actions.all()},
            )

        return await self._db.run(work, write=False)
