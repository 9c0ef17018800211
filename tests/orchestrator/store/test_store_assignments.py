"""Incident assignments, on SQLite and Postgres: assign, reassign (one assignee at a time),
unassign, and the incidents list narrowed to one assignee's or to the unassigned."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from orchestrator.store import Store
from orchestrator.store.incident_filter import IncidentFilter
from tests.orchestrator.store.store_factories import make_incident

T0 = datetime(2031, 3, 4, 5, 6, 7, tzinfo=UTC)


async def test_assign_reassign_and_unassign(store: Store) -> None:
    await store.ensure_incident(make_incident("inc-1"))
    assignments = store.assignments
    assert await assignments.of("inc-1") is None

    first = await assignments.assign("inc-1", "alice@example.com", "bob@example.com", T0)
    assert await assignments.of("inc-1") == first
    later = T0 + timedelta(minutes=5)
    await assignments.assign("inc-1", "carol@example.com", "carol@example.com", later)
    again = await assignments.of("inc-1")
    assert again is not None
    assert (again.assignee, again.assigned_by, again.assigned_at) == (
        "carol@example.com",
        "carol@example.com",
        later,
    )
    assert await assignments.assignees(["inc-1", "inc-2"]) == {"inc-1": "carol@example.com"}

    assert await assignments.unassign("inc-1") is True
    assert await assignments.unassign("inc-1") is False
    assert await assignments.of("inc-1") is None
    assert await assignments.assignees([]) == {}


async def test_the_incidents_list_filters_by_assignee_and_unassigned(store: Store) -> None:
    for incident_id in ("inc-1", "inc-2", "inc-3"):
        await store.ensure_incident(make_incident(incident_id))
    await store.assignments.assign("inc-1", "alice@example.com", "alice@example.com", T0)
    await store.assignments.assign("inc-2", "bob@example.com", "alice@example.com", T0)

    async def ids(where: IncidentFilter) -> set[str]:
        return {i.id for i in await store.list_incidents(where=where)}

    assert await ids(IncidentFilter(assignee="alice@example.com")) == {"inc-1"}
    assert await ids(IncidentFilter(assignee="nobody@example.com")) == set()
    assert await ids(IncidentFilter(unassigned=True)) == {"inc-3"}
    assert await ids(IncidentFilter()) == {"inc-1", "inc-2", "inc-3"}
