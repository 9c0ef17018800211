"""`incidents.alerts_joined` on a storm incident: the storm's further hosts are noted, not news
that calls for another triage (LD1's budget: triage calls no more than incidents); an ordinary
incident still re-triages for a new host."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from temporalio.testing import ActivityEnvironment

from agents.models import TriageResult
from orchestrator.activities.records import RecordActivities
from orchestrator.models import AlertsJoinedInput
from orchestrator.store.repository import Store
from tests.orchestrator.store.store_factories import make_alert, make_incident
from tools.models import Category, Severity, Verdict

TRIAGE = TriageResult(
    verdict=Verdict.MALICIOUS,
    confidence=0.9,
    severity=Severity.HIGH,
    category=Category.CREDENTIAL_ACCESS,
    playbook_id="credential_access",
)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    store = await Store.open(f"sqlite:///{tmp_path / 'g.db'}")
    yield store
    await store.close()


async def joined(store: Store, group_key: str) -> Any:
    incident = make_incident("live-x", group_key=group_key)
    await store.ensure_incident(incident)
    await store.add_alert(make_alert("a1", host="WS01"), incident.id, "fp-a1")
    await store.add_alert(make_alert("a2", host="WS02"), incident.id, "fp-a2")
    activities = RecordActivities(store, backends=None)  # type: ignore[arg-type]  # no vendor
    request = AlertsJoinedInput(
        incident_id=incident.id, new_uids=["a2"], seen_uids=["a1"], triage=TRIAGE
    )
    return await ActivityEnvironment().run(activities.alerts_joined, request)


async def test_a_new_host_in_a_storm_is_noted_without_a_retriage(store: Store) -> None:
    result = await joined(store, "live:storm:rule-1:live-x")
    assert [a.new_entities for a in result.joined] == [[]]
    outcomes = [e.outcome for e in await store.audit_entries("live-x") if e.type == "alert.joined"]
    assert outcomes == ["noted"]


async def test_a_new_host_in_an_ordinary_incident_calls_for_a_retriage(store: Store) -> None:
    result = await joined(store, "live:host:ws01:live-x")
    assert [a.new_entities for a in result.joined] == [["host:WS02"]]
