"""Who works an incident: one assignee per incident, or none (`incident_assignments`).

Assigning an incident that has an assignee replaces them; unassigning removes the row. The store
checks nothing about the people: the console checks the assignee against the approver directory
and audits each change (`incident.assigned`)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from pydantic import AwareDatetime, BaseModel, ConfigDict
from sqlalchemy import delete
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from orchestrator.store.columns import table_of
from orchestrator.store.tables import AssignmentRow
from orchestrator.store.transactions import Transactions

_ASSIGNMENTS = table_of(AssignmentRow)


class Assignment(BaseModel):
    model_config = ConfigDict(frozen=True)

    incident_id: str
    assignee: str
    assigned_by: str
    assigned_at: AwareDatetime


class Assignments:
    def __init__(self, db: Transactions) -> None:
        self._db = db

    async def assign(self, incident_id: str, assignee: str, by: str, at: datetime) -> Assignment:
        """Assign the incident to `assignee` (replacing whoever had it)."""
        values = {
            "incident_id": incident_id,
            "assignee": assignee,
            "assigned_by": by,
            "assigned_at": at,
        }

        async def work(session: AsyncSession) -> None:
            statement = self._db.insert(AssignmentRow, values).on_conflict_do_update(
                index_elements=[_ASSIGNMENTS.c.incident_id],
                set_={k: v for k, v in values.items() if k != "incident_id"},
            )
            await session.exec(statement)

        await self._db.run(work, write=True)
        return Assignment.model_validate(values)

    async def unassign(self, incident_id: str) -> bool:
        """Remove the incident's assignee; False when it had none."""

        async def work(session: AsyncSession) -> bool:
            statement = delete(_ASSIGNMENTS).where(_ASSIGNMENTS.c.incident_id == incident_id)
            result = await session.exec(statement)  # type: ignore[call-overload]
            return bool(result.rowcount)

        return await self._db.run(work, write=True)

    async def of(self, incident_id: str) -> Assignment | None:
        row = await self._db.first(
            select(AssignmentRow).where(AssignmentRow.incident_id == incident_id)
        )
        return None if row is None else Assignment.model_validate(row.model_dump())

    async def assignees(self, incident_ids: Iterable[str]) -> dict[str, str]:
        """The assignee of each of `incident_ids` that has one."""
        wanted = list(dict.fromkeys(incident_ids))
        if not wanted:
            return {}
        query = select(AssignmentRow).where(col(AssignmentRow.incident_id).in_(wanted))
        return {row.incident_id: row.assignee for row in await self._db.all(query)}
