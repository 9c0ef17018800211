"""Which incidents a listing wants: by verdict, severity, category and age (the console's filters).

`status` stays an argument of `Store.list_incidents` of its own, as before; an empty field here
does not narrow. Every condition is a bound parameter of the query, never text of the caller's."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import col
from sqlmodel.sql.expression import SelectOfScalar

from orchestrator.store.tables import IncidentRow
from tools.models import Category, Severity, Verdict


@dataclass(frozen=True)
class IncidentFilter:
    verdict: Verdict | None = None
    severity: Severity | None = None
    category: Category | None = None
    opened_after: datetime | None = None  # aware

    def apply(self, query: SelectOfScalar[IncidentRow]) -> SelectOfScalar[IncidentRow]:
        if self.verdict is not None:
            query = query.where(IncidentRow.verdict == self.verdict.value)
        if self.severity is not None:
            query = query.where(IncidentRow.severity == self.severity.value)
        if self.category is not None:
            query = query.where(IncidentRow.category == self.category.value)
        if self.opened_after is not None:
            query = query.where(col(IncidentRow.opened_at) >= self.opened_after)
        return query
