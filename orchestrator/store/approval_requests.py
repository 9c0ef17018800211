"""The approval requests' methods of `Store` (a base class of it, so callers keep calling
`store.get_approval` and the rest): a request bound to its action hash, the decisions counted on
it, and its one compare-and-set transition out of pending. Each method is one transaction of the
store's (see `repository`)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from orchestrator.store import audit, mapping, reads
from orchestrator.store.anchors import Anchoring, after_appends
from orchestrator.store.columns import table_of
from orchestrator.store.errors import ConflictError, NotFoundError
from orchestrator.store.records import (
    ApprovalDecision,
    ApprovalRecord,
    ApprovalStatus,
    AuditEvent,
    AuditRecord,
)
from orchestrator.store.tables import ApprovalRow
from orchestrator.store.transactions import Transactions, fetch_one

# DML goes through Core tables: ORM-enabled INSERT/UPDATE may add RETURNING and lose rowcount.
_APPROVALS = table_of(ApprovalRow)


class ApprovalRequests:
    _db: Transactions  # set by `Store.__init__`: the transactions every method runs in
    _anchoring: Anchoring | None  # set by `Store.__init__`: sees every audit entry appended

    async def create_approval(
        self, approval: ApprovalRecord, audit_events: Sequence[AuditEvent] = ()
    ) -> ApprovalRecord:
        """Insert the request, or return the stored one with the same id and action hash. The
        `audit_events` that go with it (the policy's decision, the request itself) are appended
        in order in the same transaction: one write on the way to the approval card instead of
        three, never a request without its entries, and no entries for a request refused as
        bound to a different action."""
        values = mapping.approval_values(approval)

        async def work(session: AsyncSession) -> tuple[ApprovalRow, list[AuditRecord]]:
            await session.exec(self._db.insert(ApprovalRow, values).on_conflict_do_nothing())
            row = await fetch_one(session, reads.APPROVAL, id=approval.id)
            if row is None:
                raise NotFoundError(f"approval {approval.id!r}")
            if row.action_hash != approval.action_hash:
                raise ConflictError(f"approval {approval.id!r} is bound to a different action hash")
            postgres = not self._db.sqlite
            return row, await audit.append_in(session, audit_events, postgres=postgres)

        row, entries = await self._db.run(work, write=True)
        await after_appends(self._anchoring, entries)
        return mapping.approval_record(row)

    async def get_approval(self, approval_id: str) -> ApprovalRecord | None:
        row = await self._db.first(reads.APPROVAL, id=approval_id)
        return None if row is None else mapping.approval_record(row)

    async def list_approvals(
        self, status: ApprovalStatus | None = None, incident_id: str | None = None
    ) -> list[ApprovalRecord]:
        query = select(ApprovalRow).order_by(col(ApprovalRow.created_at), col(ApprovalRow.id))
        if status is not None:
            query = query.where(ApprovalRow.status == status.value)
        if incident_id is not None:
            query = query.where(ApprovalRow.incident_id == incident_id)
        return [mapping.approval_record(row) for row in await self._db.all(query)]

    async def add_approval_decision(
        self, approval_id: str, decision: ApprovalDecision
    ) -> ApprovalRecord:
        """Append a decision while the request is pending; a user's repeat is counted once.

        Who may decide is the workflow's update validator's business; this only keeps the list
        consistent under concurrent writers (row lock on Postgres, write lock on SQLite).
        """

        async def work(session: AsyncSession) -> ApprovalRow | None:
            query = select(ApprovalRow).where(ApprovalRow.id == approval_id).with_for_update()
            row = await fetch_one(session, query)
            if row is None:
                return None
            record = mapping.approval_record(row)
            if record.status is not ApprovalStatus.PENDING or any(
                d.user == decision.user for d in record.decisions
            ):
                return row
            row.decisions = mapping.decisions_json([*record.decisions, decision])
            session.add(row)
            await session.flush()
            return row

        row = await self._db.run(work, write=True)
        if row is None:
            raise NotFoundError(f"approval {approval_id!r}")
        return mapping.approval_record(row)

    async def transition_approval(
        self, approval_id: str, to: ApprovalStatus, decided_at: datetime
    ) -> bool:
        """Compare-and-set from pending: True for the one caller whose transition took effect."""
        if to is ApprovalStatus.PENDING:
            raise ValueError("an approval can only leave pending")
        statement = (
            update(_APPROVALS)
            .where(_APPROVALS.c.id == approval_id)
            .where(_APPROVALS.c.status == ApprovalStatus.PENDING.value)
            .values(status=to.value, decided_at=decided_at)
        )

        async def work(session: AsyncSession) -> bool:
            return (await session.exec(statement)).rowcount == 1

        return await self._db.run(work, write=True)
