"""Training sessions kept in the store (`training_sessions`): each `garrison train` session's
scores and debriefs, so a team sees its progress over time (CLI `garrison train history`, the
console's training pages). A session is kept once: keeping the same id again changes nothing."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from orchestrator.store.tables import TrainingSessionRow
from orchestrator.store.transactions import Transactions

TRAINING_SCHEMA = "garrison.training/1"


class TrainingSessionSummary(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    analyst: str
    started_at: datetime
    finished_at: datetime
    incidents: int
    decisions: int
    accuracy: float
    over_response: int
    missed: int
    containment_recall: float
    agents_recall: float
    median_think_s: float | None


class TrainingSession(TrainingSessionSummary):
    report: dict[str, Any]  # `garrison.training/1`: the score, per-incident scores and debriefs


class TrainingSessions:
    def __init__(self, db: Transactions) -> None:
        self._db = db

    async def keep(self, summary: TrainingSessionSummary, report: dict[str, Any]) -> None:
        if report.get("schema") != TRAINING_SCHEMA:
            raise ValueError(f"not a {TRAINING_SCHEMA} report: schema {report.get('schema')!r}")
        values = summary.model_dump() | {"report": json.dumps(report)}

        async def work(session: AsyncSession) -> None:
            await session.exec(  # type: ignore[call-overload]
                self._db.insert(TrainingSessionRow, values).on_conflict_do_nothing()
            )

        await self._db.run(work, write=True)

    async def list(
        self, analyst: str | None = None, limit: int = 200
    ) -> list[TrainingSessionSummary]:
        """The newest sessions first (their reports not read), of one analyst or of everyone."""
        columns = [c for c in TrainingSessionRow.__table__.columns if c.name != "report"]  # type: ignore[attr-defined]
        query = select(*columns)
        if analyst is not None:
            query = query.where(col(TrainingSessionRow.analyst) == analyst)
        query = query.order_by(col(TrainingSessionRow.finished_at).desc()).limit(limit)

        async def work(session: AsyncSession) -> list[TrainingSessionSummary]:
            rows = (await session.exec(query)).all()  # type: ignore[call-overload]
            return [TrainingSessionSummary.model_validate(dict(row._mapping)) for row in rows]

        return await self._db.run(work, write=False)

    async def get(self, session_id: str) -> TrainingSession | None:
        query = select(TrainingSessionRow).where(TrainingSessionRow.id == session_id)
        row = await self._db.first(query)
        if row is None:
            return None
        fields = row.model_dump(exclude={"report"})
        return TrainingSession.model_validate(fields | {"report": json.loads(row.report)})
