"""The store as the source of truth for human decisions, and the global isolation breaker's count.

`record_claim` is called by `ApprovalService` only, after its checks; the workflow's
`approvals.confirm` activity reads the claim back and counts the decision with the claim's
identity and groups, never the ones a caller sent through Temporal. `response.execute` counts
the claims again before it acts on an approval.

`reserve_isolation` takes one slot per isolation requested (idempotent per business key) and
answers its position in the sliding window, so that every process and every incident share one
count. Postgres serialises the reservations with an advisory lock; SQLite's write lock does.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from orchestrator.store.records import DecisionClaim
from orchestrator.store.tables import DecisionClaimRow, IsolationSlotRow
from orchestrator.store.transactions import Transactions, fetch_one

_PG_BREAKER_LOCK = int.from_bytes(b"garr-brk", "big", signed=True)


class Decisions:
    def __init__(self, db: Transactions) -> None:
        self._db = db

    async def record_claim(self, claim: DecisionClaim) -> None:
        values = {
            "decision_id": claim.decision_id,
            "approval_id": claim.approval_id,
            "incident_id": claim.incident_id,
            "action_hash": claim.action_hash,
            "user": claim.user,
            "groups": json.dumps(sorted(claim.groups)),
            "decision": claim.decision,
            "channel": claim.channel,
            "at": claim.at,
        }

        async def work(session: AsyncSession) -> None:
            await session.exec(  # type: ignore[call-overload]
                self._db.insert(DecisionClaimRow, values).on_conflict_do_nothing()
            )

        await self._db.run(work, write=True)

    async def claim(self, decision_id: str) -> DecisionClaim | None:
        row = await self._db.first(
            select(DecisionClaimRow).where(DecisionClaimRow.decision_id == decision_id)
        )
        return None if row is None else _claim(row)

    async def claims_for(self, approval_id: str) -> list[DecisionClaim]:
        rows = await self._db.all(
            select(DecisionClaimRow)
            .where(DecisionClaimRow.approval_id == approval_id)
            .order_by(col(DecisionClaimRow.at))
        )
        return [_claim(row) for row in rows]

    async def reserve_isolation(
        self, business_key: str, scope: str, at: datetime, window: timedelta
    ) -> int:
        """Take the slot of `business_key` (first reservation wins; a retry keeps its slot) and
        answer how many slots of `scope` taken up to it, this one included, fall in the window
        ending at it: its position in arrival order."""
        db = self._db

        async def work(session: AsyncSession) -> int:
            if not db.sqlite:
                await session.exec(select(func.pg_advisory_xact_lock(_PG_BREAKER_LOCK)))
            values = {"business_key": business_key, "scope": scope, "at": at}
            await session.exec(  # type: ignore[call-overload]
                db.insert(IsolationSlotRow, values).on_conflict_do_nothing()
            )
            mine = await fetch_one(
                session,
                select(IsolationSlotRow).where(IsolationSlotRow.business_key == business_key),
            )
            assert mine is not None and mine.id is not None
            count = await session.exec(
                select(func.count())
                .select_from(IsolationSlotRow)
                .where(
                    IsolationSlotRow.scope == scope,
                    col(IsolationSlotRow.at) > mine.at - window,
                    col(IsolationSlotRow.id) <= mine.id,
                )
            )
            return int(count.one())

        return await db.run(work, write=True)


def _claim(row: DecisionClaimRow) -> DecisionClaim:
    return DecisionClaim(
        decision_id=row.decision_id,
        approval_id=row.approval_id,
        incident_id=row.incident_id,
        action_hash=row.action_hash,
        user=row.user,
        groups=json.loads(row.groups),
        decision=row.decision,  # type: ignore[arg-type]  # written from the Literal
        channel=row.channel,
        at=row.at,
    )
