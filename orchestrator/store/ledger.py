"""The action ledger's methods of `Store` (a base class of it, so callers keep calling
`store.ledger_begin` and the rest): one entry per side effect under its business key, begun before
the vendor is called and finished with how it ended and its inverse, the record idempotent
execution and rollback read. Each method is one transaction of the store's (see `repository`)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Update, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from orchestrator.store import audit, mapping, reads
from orchestrator.store.anchors import Anchoring, after_appends
from orchestrator.store.columns import table_of
from orchestrator.store.errors import NotFoundError
from orchestrator.store.records import ActionRecord, ActionStatus, AuditEvent, AuditRecord
from orchestrator.store.tables import ActionRow
from orchestrator.store.transactions import Transactions, fetch_one
from tools.actions import Action

# DML goes through Core tables: ORM-enabled INSERT/UPDATE may add RETURNING and lose rowcount.
_ACTIONS = table_of(ActionRow)
_ENDED_WITHOUT_SUCCESS = (ActionStatus.FAILED, ActionStatus.ABANDONED)


class ActionLedger:
    _db: Transactions  # set by `Store.__init__`: the transactions every method runs in
    _anchoring: Anchoring | None  # set by `Store.__init__`: sees every audit entry appended

    async def ledger_get(self, business_key: str) -> ActionRecord | None:
        row = await self._db.first(reads.ACTION, business_key=business_key)
        return None if row is None else mapping.action_record(row)

    async def ledger_begin(self, record: ActionRecord) -> ActionRecord:
        """Insert a pending entry, or return the entry already under its business key; an entry
        that ended without success (failed, abandoned) is pending again: it is being retried."""
        values = mapping.action_values(record)
        reopen = (
            update(_ACTIONS)
            .where(_ACTIONS.c.business_key == record.business_key)
            .where(_ACTIONS.c.status.in_([s.value for s in _ENDED_WITHOUT_SUCCESS]))
            .values(status=ActionStatus.PENDING.value, completed_at=None)
        )

        async def work(session: AsyncSession) -> ActionRow | None:
            await session.exec(self._db.insert(ActionRow, values).on_conflict_do_nothing())
            await session.exec(reopen)
            return await fetch_one(session, reads.ACTION, business_key=record.business_key)

        row = await self._db.run(work, write=True)
        if row is None:  # only if the key vanished between the insert and the read
            raise NotFoundError(f"ledger entry {record.business_key!r}")
        return mapping.action_record(row)

    async def ledger_finish(
        self,
        business_key: str,
        status: ActionStatus,
        *,
        outcome: str,
        already_in_state: bool = False,
        verified: bool = False,
        inverse: Action | None = None,
        completed_at: datetime | None = None,
        audit_event: AuditEvent | None = None,
    ) -> ActionRecord:
        """Record how a side effect ended (or that it was rolled back) and its inverse. With
        `audit_event`, that entry is appended to the audit chain in the same transaction: an
        entry never ends without its audit (I6), and it costs one write, not two."""
        if status is ActionStatus.PENDING:
            raise ValueError("ledger_finish needs a terminal status")
        values = {
            "status": status.value,
            "outcome": outcome,
            "already_in_state": already_in_state,
            "verified": verified,
            "inverse": None if inverse is None else mapping.action_json(inverse),
            "completed_at": completed_at or datetime.now(UTC),
        }
        statement = update(_ACTIONS).where(_ACTIONS.c.business_key == business_key)
        return await self._ledger_update(business_key, statement.values(**values), audit_event)

    async def ledger_attempt(self, business_key: str) -> ActionRecord:
        """Count a change about to be sent to the vendor, before it is sent (see `attempts`)."""
        statement = (
            update(_ACTIONS)
            .where(_ACTIONS.c.business_key == business_key)
            .values(attempts=_ACTIONS.c.attempts + 1)
        )
        return await self._ledger_update(business_key, statement)

    async def ledger_end(
        self, business_key: str, status: ActionStatus, *, outcome: str
    ) -> ActionRecord | None:
        """Finish a still-pending entry as `failed` or `abandoned`; an entry that already ended
        keeps its end (a late success stands). None when there is no such entry."""
        if status not in _ENDED_WITHOUT_SUCCESS:
            raise ValueError("ledger_end records failed or abandoned")
        statement = (
            update(_ACTIONS)
            .where(_ACTIONS.c.business_key == business_key)
            .where(_ACTIONS.c.status == ActionStatus.PENDING.value)
            .values(status=status.value, outcome=outcome, completed_at=datetime.now(UTC))
        )
        try:
            return await self._ledger_update(business_key, statement)
        except NotFoundError:
            return None

    async def _ledger_update(
        self, business_key: str, statement: Update, audit_event: AuditEvent | None = None
    ) -> ActionRecord:
        async def work(session: AsyncSession) -> tuple[ActionRow, list[AuditRecord]]:
            await session.exec(statement)
            row = await fetch_one(session, reads.ACTION, business_key=business_key)
            if row is None:  # raised inside: nothing of the transaction is kept
                raise NotFoundError(f"ledger entry {business_key!r}")
            events = [] if audit_event is None else [audit_event]
            return row, await audit.append_in(session, events, postgres=not self._db.sqlite)

        row, entries = await self._db.run(work, write=True)
        await after_appends(self._anchoring, entries)
        return mapping.action_record(row)

    async def actions_for(self, incident_id: str) -> list[ActionRecord]:
        """The incident's ledger in the order the actions began (rollback walks it backwards)."""
        query = (
            select(ActionRow)
            .where(ActionRow.incident_id == incident_id)
            .order_by(col(ActionRow.id))
        )
        return [mapping.action_record(row) for row in await self._db.all(query)]
