"""Simulation runs kept in the store: each `garrison simulate` run's scorecard (`simulation_runs`).

The scorecard is kept as the JSON text the run produced (the same document `--report-json`
writes), with its headline metrics in columns so that the console lists runs without parsing
every report. A run is kept once: keeping the same id again changes nothing. Keeping a run with
`retain` set removes the oldest runs beyond the newest `retain` (`GARRISON_SIMULATION_RUNS_KEEP`)
in the same transaction.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy import delete
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from orchestrator.store.columns import table_of
from orchestrator.store.tables import SimulationRunRow
from orchestrator.store.transactions import Transactions

SCORECARD_SCHEMA = "garrison.scorecard/1"
_METRICS = (
    "incidents",
    "verdict_accuracy",
    "containment_precision",
    "containment_recall",
    "over_response",
    "unapproved_risky_actions",
)


class SimulationRunSummary(BaseModel):
    """A kept run's headline: what the console's list of runs shows."""

    model_config = ConfigDict(frozen=True)

    id: str
    finished_at: datetime
    label: str
    incidents: int
    verdict_accuracy: float
    containment_precision: float
    containment_recall: float
    over_response: int
    unapproved_risky_actions: int


class SimulationRun(SimulationRunSummary):
    report: dict[str, Any]  # the scorecard, as the run wrote it


class SimulationRuns:
    def __init__(self, db: Transactions) -> None:
        self._db = db

    async def keep(
        self,
        run_id: str,
        finished_at: datetime,
        label: str,
        report: dict[str, Any],
        retain: int | None = None,
    ) -> None:
        """Keep `report` (a `garrison.scorecard/1` document) as run `run_id`; ValueError if it is
        not one. With `retain`, only the newest `retain` runs stay."""
        if retain is not None and retain < 1:
            raise ValueError(f"retain must be at least 1, not {retain}")
        if report.get("schema") != SCORECARD_SCHEMA:
            raise ValueError(f"not a {SCORECARD_SCHEMA} report: schema {report.get('schema')!r}")
        values: dict[str, Any] = {
            "id": run_id,
            "finished_at": finished_at,
            "label": label,
            "report": json.dumps(report),
        }
        for metric in _METRICS:
            value = report.get(metric)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"the report's {metric!r} is missing or not a number")
            values[metric] = value

        async def work(session: AsyncSession) -> None:
            await session.exec(  # type: ignore[call-overload]
                self._db.insert(SimulationRunRow, values).on_conflict_do_nothing()
            )
            if retain is not None:
                newest = (
                    select(SimulationRunRow.id)
                    .order_by(col(SimulationRunRow.finished_at).desc(), col(SimulationRunRow.id))
                    .limit(retain)
                )
                kept = list((await session.exec(newest)).all())
                runs = table_of(SimulationRunRow)
                await session.exec(  # type: ignore[call-overload]
                    delete(runs).where(runs.c.id.not_in(kept))
                )

        await self._db.run(work, write=True)

    async def list(self, limit: int = 200) -> list[SimulationRunSummary]:
        """The newest runs first (their reports not read)."""
        columns = [c for c in SimulationRunRow.__table__.columns if c.name != "report"]  # type: ignore[attr-defined]
        query = select(*columns).order_by(col(SimulationRunRow.finished_at).desc()).limit(limit)

        async def work(session: AsyncSession) -> list[SimulationRunSummary]:
            rows = (await session.exec(query)).all()  # type: ignore[call-overload]
            return [SimulationRunSummary.model_validate(dict(row._mapping)) for row in rows]

        return await self._db.run(work, write=False)

    async def get(self, run_id: str) -> SimulationRun | None:
        row = await self._db.first(select(SimulationRunRow).where(SimulationRunRow.id == run_id))
        if row is None:
            return None
        fields = row.model_dump(exclude={"report"})
        return SimulationRun.model_validate(fields | {"report": json.loads(row.report)})
