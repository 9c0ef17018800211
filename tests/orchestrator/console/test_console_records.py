"""What the console reads that the workflow alone used to hold: the triage's rationale (in the
`agent.triage` audit entry) and an approval request's rationale and evidence (in its
`approval.requested` entry), written by the activities themselves."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from temporalio.testing import ActivityEnvironment

from orchestrator.activities.agents import AgentActivities
from orchestrator.activities.approvals import ApprovalActivities
from orchestrator.approvals.notifier import LogNotifier
from orchestrator.console.views import proposal_of, rationale_of
from orchestrator.models import ApprovalRequestInput, IncidentRef
from orchestrator.policy.evaluate import DecisionOutcome, PolicyDecision, RiskFactor
from orchestrator.store import Store
from tests.agents.fakes import alert, read_tools
from tests.orchestrator.store.store_factories import make_incident
from tools.actions import IsolateHost
from tools.models import Severity
from tools.toolsets import ReadTools


class _ReadOnly:
    def read_tools(self, incident_id: str) -> ReadTools:
        return read_tools()


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    store = await Store.open(f"sqlite:///{tmp_path / 'garrison.db'}")
    yield store
    await store.close()


async def test_the_triage_activity_keeps_its_rationale_for_the_console(store: Store) -> None:
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

    assert result.rationale
    shown = rationale_of(await store.audit_entries("inc-7"))
    assert shown == [line.replace("\n", " ") for line in result.rationale]


async def test_the_approval_request_keeps_its_rationale_and_evidence(store: Store) -> None:
    await store.ensure_incident(make_incident("inc-8"))
    now = datetime.now(UTC)
    request = ApprovalRequestInput(
        approval_id="apr-00000000000000aa",
        incident_id="inc-8",
        action=IsolateHost(target="WS-17"),
        action_hash="a" * 64,
        decision=PolicyDecision(
            outcome=DecisionOutcome.NEEDS_APPROVAL,
            risk=60,
            factors=[RiskFactor(name="criticality high", points=30)],
            required_approvers=1,
            reasons=["risk 60 over 50"],
            policy_version="p1",
        ),
        requester="garrison-agent",
        approver_group="soc-primary",
        escalation_group="soc-secondary",
        requested_at=now,
        deadline=now + timedelta(minutes=15),
        expires_at=now + timedelta(minutes=30),
        rationale="LSASS dumped on WS-17 by comsvcs.dll",
        evidence=["sysmon 10 on WS-17: rundll32 -> lsass", "edr detection 4411"],
        rationale_from_model=True,
    )
    activities = ApprovalActivities(store, LogNotifier())

    await ActivityEnvironment().run(activities.request, request)

    assert proposal_of(await store.audit_entries("inc-8"), request.approval_id) == (
        "LSASS dumped on WS-17 by comsvcs.dll",
        ["sysmon 10 on WS-17: rundll32 -> lsass", "edr detection 4411"],
        True,
    )
