"""Which incidents a listing wants: by verdict, severity, category, age and assignee (the
console's filters).

`status` stays an argument of `Store.list_incidents` of its own, as before; an empty field here
does not narrow. Every condition is a bound parameter of the query, never text of the caller's."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import col, select
from sqlmodel.sql.expression import SelectOfScalar

from orchestrator.store.tables import AssignmentRow, IncidentRow
from tools.models import Category, Severity, Verdict


@dataclass(frozen=True)
class IncidentFilter:
    verdict: Verdict | None = None
    severity: Severity | None = None
    category: Category | None = None
    opened_after: datetime | None = None  # aware
    assignee: str | None = None  # a canonical identity: the incidents assigned to them
    unassigned: bool = False  # the incidents nobody is assigned to

    def apply(self, query: SelectOfScalar[IncidentRow]) -> SelectOfScalar[IncidentRow]:
        if self.verdict is not None:
            query = query.where(IncidentRow.verdict == self.verdict.value)
        if self.severity is not None:
            query = query.where(IncidentRow.severity == self.severity.value)
        if self.category is not None:
            query = query.where(IncidentRow.category == self.category.value)
        if self.opened_after is not None:
            query = query.where(col(IncidentRow.opened_at) >= self.opened_after)
        assigned = select(AssignmentRow.incident_id)
        if self.assignee is not None:
            mine = assigned.where(AssignmentRow.assignee == self.assignee)
            query = query.where(col(IncidentRow.id).in_(mine))
        if self.unassigned:
            query = query.where(col(IncidentRow.id).not_in(assigned))
        return query
