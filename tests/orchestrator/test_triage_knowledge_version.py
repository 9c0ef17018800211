"""The triage activity records which knowledge decided the incident: the version of the agents'
knowledge files goes on the incident's store row and in the `agent.triage` audit entry."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from temporalio.testing import ActivityEnvironment

from agents.knowledge import KNOWLEDGE_VERSION
from orchestrator.activities.agents import AgentActivities
from orchestrator.models import IncidentRef
from orchestrator.store import Store
from tests.agents.fakes import alert, read_tools
from tests.orchestrator.store.store_factories import make_incident
from tools.models import Severity
from tools.toolsets import ReadTools


class _ReadOnly:
    """The one thing the triage activity asks of the backends: read tools for an incident."""

    def read_tools(self, incident_id: str) -> ReadTools:
        return read_tools()


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    store = await Store.open(f"sqlite:///{tmp_path / 'garrison.db'}")
    yield store
    await store.close()


async def test_the_triage_activity_records_the_knowledge_version(store: Store) -> None:
    await store.ensure_incident(make_incident("inc-7"))
    found = alert(
        "a1",
        "Credential tool on the command line",
        Severity.HIGH,
        [("T1003.001", "credential-access")],
        host="ws-17.corp.example",
        user="corp\\kim",
        pid=640,
        cmd="rundll32.exe C:\\Windows\\System32\\comsvcs.dll, MiniDump 612 C:\\t\\x.dmp full",
    )
    await store.add_alert(found, "inc-7", "fp-1")
    activities = AgentActivities(store, _ReadOnly(), checkpointer=None)  # type: ignore[arg-type]

    result = await ActivityEnvironment().run(activities.triage, IncidentRef(incident_id="inc-7"))

    assert result.knowledge_version == KNOWLEDGE_VERSION
    incident = await store.get_incident("inc-7")
    assert incident is not None and incident.knowledge_version == KNOWLEDGE_VERSION
    entries = [e for e in await store.audit_entries("inc-7") if e.type == "agent.triage"]
    assert [e.detail["knowledge_version"] for e in entries] == [KNOWLEDGE_VERSION]
