"""Alerts that join an incident after its triage, on the real pipeline (agents, activities, store,
twins) and the session's Temporal dev server: a new host is noted, audited, re-triaged and
contained by a follow-up pass; an alert that adds nothing, landing in the last round, is noted
before close without a re-triage; continue-as-new leaves the incident's result unchanged."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from tests.orchestrator.workflows.pipeline import LateDelivery, recorded, running_recorded
from tools.actions import ActionKind

pytestmark = pytest.mark.temporal

BASELINE = Path(__file__).parents[3] / "simulations" / "baselines" / "corpus.json"
SMBEXEC = "otrf-empire-smbexec-ws5-ws6"  # WORKSTATION6 alerts first, WORKSTATION5 by alert 21


async def test_alerts_for_a_new_host_after_triage_are_noted_retriaged_and_contained(
    temporal_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    loaded = recorded(SMBEXEC)
    alerts = loaded.spec.alerts
    ws6 = [a for a in alerts if a.entities.host == "WORKSTATION6"]
    ws5 = [a for a in alerts if a.entities.host == "WORKSTATION5"]
    assert ws5 and ws6
    late = LateDelivery(ws5, during="first")
    async with running_recorded(temporal_env.client, tmp_path, loaded, ws6, late) as run:
        result = await run.result_approving_everything()
        edr = run.backends.response_tools(run.incident_id).edr
        ticket = await run.backends.response_tools(run.incident_id).ticketing.find_ticket(
            run.incident_id
        )
        audit = await run.store.audit_entries(incident_id=run.incident_id)
    assert late.delivered
    # the new host is contained, the first one not twice
    assert await edr.is_contained("WORKSTATION5") and await edr.is_contained("WORKSTATION6")
    isolated = [
        e.action.target for e in result.executed if e.action.kind is ActionKind.ISOLATE_HOST
    ]
    assert sorted(isolated) == ["WORKSTATION5", "WORKSTATION6"]
    assert result.verdict.value == "malicious"
    # on the ticket: the joined alerts, defanged, with their host, then the second triage
    assert ticket is not None
    notes = [c for c in ticket.comments if "joined this incident" in c]
    assert len(notes) == 1 and "WORKSTATION5" in notes[0] and "Re-triaging" in notes[0]
    assert sum(c.startswith("Triage:") for c in ticket.comments) == 2
    # in the audit log: one record per joined alert, and a second triage
    joined = [e for e in audit if e.type == "alert.joined"]
    assert sorted(str(e.target) for e in joined) == sorted(a.uid for a in ws5)
    # the first names WORKSTATION5, the rest add nothing more
    assert [e.outcome for e in joined].count("retriage") == 1
    assert sum(e.type == "agent.triage" for e in audit) == 2


async def test_alert_adding_nothing_in_the_last_round_is_noted_before_close_without_retriage(
    temporal_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    loaded = recorded(SMBEXEC)
    *first, last = loaded.spec.alerts  # the last: WORKSTATION6 again, as SYSTEM, high
    late = LateDelivery([last], during="last")
    async with running_recorded(temporal_env.client, tmp_path, loaded, first, late) as run:
        result = await run.result_approving_everything()
        ticket = await run.backends.response_tools(run.incident_id).ticketing.find_ticket(
            run.incident_id
        )
        audit = await run.store.audit_entries(incident_id=run.incident_id)
    assert late.delivered
    assert ticket is not None
    notes = [c for c in ticket.comments if "joined this incident" in c]
    assert len(notes) == 1 and "no re-triage" in notes[0]
    # noted before the close: the closing summary is the ticket's last comment
    assert ticket.comments.index(notes[0]) < len(ticket.comments) - 1
    assert [e.outcome for e in audit if e.type == "alert.joined"] == ["noted"]
    assert sum(e.type == "agent.triage" for e in audit) == 1
    assert result.verdict.value == "malicious"


async def test_continue_as_new_leaves_the_incident_result_unchanged(
    temporal_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    name = "otrf-lsass-procdump-acct01"
    loaded = recorded(name)
    async with running_recorded(
        temporal_env.client,
        tmp_path,
        loaded,
        loaded.spec.alerts,
        continue_as_new_after_events=1,
    ) as run:
        result = await run.result_approving_everything()
        first_run = temporal_env.client.get_workflow_handle(
            run.handle.id, run_id=run.handle.first_execution_run_id
        )
        history = await first_run.fetch_history()
    assert history.events[-1].HasField("workflow_execution_continued_as_new_event_attributes")
    baseline = next(i for i in json.loads(BASELINE.read_text())["per_incident"] if i["id"] == name)
    assert result.verdict.value == baseline["verdict"]
    assert result.category == baseline["category"]
    # the same actions (a round's approvals are decided together: their order is the answers')
    assert sorted((e.action.kind.value, e.action.target) for e in result.executed) == sorted(
        (a["kind"], a["target"]) for a in baseline["executed_actions"]
    )
    assert result.started_at < result.executed[0].at
    assert "credential access playbook" in result.summary
    assert result.playbook == "credential_access"  # the routing's choice, carried across runs
