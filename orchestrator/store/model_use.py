"""The agents' model use as the store keeps it: per incident and role, the calls, tokens, cost and
latency of the seam's ledger (`model_usage`), and the summaries role's latest narrative with its
per-action justifications (`incident_narratives`).

The worker writes the usage after every agent activity (absolute values, so a retried activity
writes the same row) and brings the incident's ledger up to these rows before every one, so
budgets and figures survive a restart and hold across workers. The scorecard, the console and
`/metrics` all read these rows."""

from __future__ import annotations

import json
from collections.abc import Iterable

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from sqlalchemy import func
from sqlalchemy import select as columns
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from orchestrator.store.columns import table_of
from orchestrator.store.tables import ModelUsageRow, NarrativeRow
from orchestrator.store.transactions import Transactions

_USAGE = table_of(ModelUsageRow)
_NARRATIVES = table_of(NarrativeRow)


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class ModelUsageRecord(_Frozen):
    incident_id: str
    role: str
    model: str
    calls: int = 0
    answered: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    latency_s: float = 0.0
    budget_exceeded: bool = False
    disagreements: list[str] = Field(default_factory=list)
    updated_at: AwareDatetime


class RoleTotals(_Frozen):
    """One role's usage summed over every incident (what `/metrics` shows)."""

    calls: int
    input_tokens: int
    output_tokens: int
    cost_usd: float
    latency_s: float


class ActionNarrative(_Frozen):
    kind: str
    target: str
    text: str


class NarrativeRecord(_Frozen):
    incident_id: str
    model: str
    text: str
    justifications: list[ActionNarrative] = Field(default_factory=list)
    written_at: AwareDatetime

    def justification(self, kind: str, target: str) -> str | None:
        found = (j.text for j in self.justifications if j.kind == kind and j.target == target)
        return next(found, None)


class ModelUse:
    def __init__(self, db: Transactions) -> None:
        self._db = db

    async def save_usage(self, records: Iterable[ModelUsageRecord]) -> None:
        rows = [r.model_dump() | {"disagreements": json.dumps(r.disagreements)} for r in records]
        if not rows:
            return

        async def work(session: AsyncSession) -> None:
            for values in rows:
                statement = self._db.insert(ModelUsageRow, values).on_conflict_do_update(
                    index_elements=[_USAGE.c.incident_id, _USAGE.c.role],
                    set_={k: v for k, v in values.items() if k not in ("incident_id", "role")},
                )
                await session.exec(statement)

        await self._db.run(work, write=True)

    async def usage_of(self, incident_id: str) -> list[ModelUsageRecord]:
        return (await self.usage_for([incident_id])).get(incident_id, [])

    async def usage_for(self, incident_ids: Iterable[str]) -> dict[str, list[ModelUsageRecord]]:
        wanted = list(dict.fromkeys(incident_ids))
        if not wanted:
            return {}
        query = (
            select(ModelUsageRow)
            .where(col(ModelUsageRow.incident_id).in_(wanted))
            .order_by(col(ModelUsageRow.incident_id), col(ModelUsageRow.role))
        )
        found: dict[str, list[ModelUsageRecord]] = {}
        for row in await self._db.all(query):
            values = row.model_dump() | {"disagreements": json.loads(row.disagreements or "[]")}
            found.setdefault(row.incident_id, []).append(ModelUsageRecord.model_validate(values))
        return found

    async def totals_by_role(self) -> dict[str, RoleTotals]:
        async def work(session: AsyncSession) -> dict[str, RoleTotals]:
            # The Core table's columns: sqlmodel's `select` types at most four.
            statement = columns(
                _USAGE.c.role,
                func.sum(_USAGE.c.calls),
                func.sum(_USAGE.c.input_tokens),
                func.sum(_USAGE.c.output_tokens),
                func.sum(_USAGE.c.cost_usd),
                func.sum(_USAGE.c.latency_s),
            ).group_by(_USAGE.c.role)
            rows = await session.exec(statement)  # type: ignore[call-overload]
            return {
                role: RoleTotals(
                    calls=int(calls or 0),
                    input_tokens=int(tokens_in or 0),
                    output_tokens=int(tokens_out or 0),
                    cost_usd=float(cost or 0.0),
                    latency_s=float(latency or 0.0),
                )
                for role, calls, tokens_in, tokens_out, cost, latency in rows.all()
            }

        return await self._db.run(work, write=False)

    async def save_narrative(self, record: NarrativeRecord) -> None:
        values = record.model_dump(mode="python") | {
            "justifications": json.dumps([j.model_dump() for j in record.justifications])
        }

        async def work(session: AsyncSession) -> None:
            statement = self._db.insert(NarrativeRow, values).on_conflict_do_update(
                index_elements=[_NARRATIVES.c.incident_id],
                set_={k: v for k, v in values.items() if k != "incident_id"},
            )
            await session.exec(statement)

        await self._db.run(work, write=True)

    async def narrative_of(self, incident_id: str) -> NarrativeRecord | None:
        row = await self._db.first(
            select(NarrativeRow).where(NarrativeRow.incident_id == incident_id)
        )
        if row is None:
            return None
        values = row.model_dump() | {"justifications": json.loads(row.justifications or "[]")}
        return NarrativeRecord.model_validate(values)
