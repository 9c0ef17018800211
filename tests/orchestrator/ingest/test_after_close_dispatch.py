"""Late alerts of a closed incident through the real Ingestor and Dispatcher, on the session's
Temporal dev server, with a worker running the real activities and agents over a recorded
incident's twins: noise after the close is attached to the incident (stored, audited) with no
second run and nothing on the ticket; alerts naming a new host reopen it for exactly one more run
under the same workflow id, which re-triages, runs one more pass that recalls everything the first
run did (nothing executed twice), and adds its note of the late alerts and its re-triage to the
same ticket without repeating any comment of the first run; a further new host within the reopen
interval is held: attached, audited, no third run."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from temporalio.client import WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment

from orchestrator.ingest.after_close import AFTER_CLOSE, REOPENED
from orchestrator.store.records import AuditEvent, IncidentStatus
from tests.orchestrator.ingest.late_kit import live_incident
from tests.orchestrator.workflows.pipeline import recorded
from tools.actions import ActionKind

pytestmark = pytest.mark.temporal

SMBEXEC = "otrf-empire-smbexec-ws5-ws6"  # WORKSTATION6 alerts first, WORKSTATION5 from alert 21
COMPLETED = WorkflowExecutionStatus.COMPLETED


async def test_noise_after_close_attaches_and_a_new_host_reopens_the_incident_once(
    temporal_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    loaded = recorded(SMBEXEC)
    alerts = loaded.spec.alerts
    ws6 = [a for a in alerts[:20] if a.entities.host == "WORKSTATION6"]
    ws5 = [a for a in alerts if a.entities.host == "WORKSTATION5"]
    noise = alerts[-1]  # WORKSTATION6 again, as SYSTEM: nothing the incident did not have
    assert len(ws6) == 20 and len(ws5) == 4 and noise.entities.host == "WORKSTATION6"
    async with live_incident(temporal_env.client, tmp_path, loaded) as live:
        incident = live.incident_id
        assert await live.send(ws6) == [incident]
        first = await live.result_approving_everything()
        ticketing = live.backends.response_tools(incident).ticketing
        ticket = await ticketing.find_ticket(incident)
        assert ticket is not None
        first_comments = list(ticket.comments)

        # noise: a member of the closed incident, audited, no second run, nothing on the ticket
        assert await live.send([noise]) == [incident]
        assert await live.runs() == [COMPLETED]
        assert await live.store.intake.unsignalled(10) == []
        attached = await live.store.get_incident(incident)
        assert attached is not None and attached.status is IncidentStatus.CLOSED
        assert noise.uid in [a.uid for a in await live.store.alerts_for(incident)]
        ticket = await ticketing.find_ticket(incident)
        assert ticket is not None and ticket.comments == first_comments

        # a new host: the incident reopens, one more run under the same workflow id
        assert await live.send(ws5) == [incident]
        second = await live.result_approving_everything()
        assert await live.runs() == [COMPLETED, COMPLETED]
        edr = live.backends.response_tools(incident).edr
        assert await edr.is_contained("WORKSTATION5") and await edr.is_contained("WORKSTATION6")
        ticket = await ticketing.find_ticket(incident)
        closed = await live.store.get_incident(incident)
        ledger = await live.store.actions_for(incident)

        # a third host within the reopen interval: held, attached, no third run
        held = noise.model_copy(
            update={
                "uid": "late-ws7",
                "entities": ws5[1].entities.model_copy(update={"host": "WORKSTATION7"}),
            }
        )
        assert await live.send([held]) == [incident]
        runs = await live.runs()
        audit = await live.store.audit_entries(incident_id=incident)

    isolated = [
        e.action.target for e in second.executed if e.action.kind is ActionKind.ISOLATE_HOST
    ]
    assert sorted(isolated) == ["WORKSTATION5", "WORKSTATION6"]
    assert second.executed == first.executed  # recalled by the new pass, not executed again
    # each action applied once: one ledger entry per action of the incident
    assert len(ledger) == len({(r.kind, r.target.lower()) for r in ledger})
    # the same ticket; the first run's comments are not repeated, the reopen adds its own
    assert ticket is not None and ticket.comments[: len(first_comments)] == first_comments
    added = ticket.comments[len(first_comments) :]
    repeated = Counter(added) & Counter(first_comments)
    assert not repeated, repeated
    joined = [c for c in added if "joined this incident" in c]
    assert len(joined) == 1 and "WORKSTATION5" in joined[0] and "Re-triaging" in joined[0]
    assert sum(c.startswith("Triage:") for c in added) == 1
    assert len(added) == 2  # the late alerts' note and the re-triage: nothing else
    assert sum(e.type == "agent.triage" for e in audit) == 2
    assert closed is not None and closed.status is IncidentStatus.CLOSED
    # the audit: noise attached, the new host reopened it once, the third host held
    assert [e.outcome for e in audit if e.type == AFTER_CLOSE] == ["attached", "reopened", "held"]
    assert [e.outcome for e in audit if e.type == REOPENED] == ["reopen 1"]
    assert runs == [COMPLETED, COMPLETED]


async def test_a_reopen_whose_run_never_started_is_started_by_the_next_pass(
    temporal_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    loaded = recorded(SMBEXEC)
    ws6 = loaded.spec.alerts[:20]
    ws5 = [a for a in loaded.spec.alerts if a.entities.host == "WORKSTATION5"]
    async with live_incident(temporal_env.client, tmp_path, loaded) as live:
        incident = live.incident_id
        await live.send(ws6)
        await live.result_approving_everything()
        # the dispatcher reopened it in the store and audited it, then died before the start
        assert await live.store.intake.reopen_incident(incident)
        await live.store.append_audit(
            AuditEvent(
                type=REOPENED,
                actor="garrison-dispatcher",
                outcome="reopen 1",
                source="ingest:dispatcher",
                incident_id=incident,
            )
        )
        assert await live.send(ws5[:1]) == [incident]  # the next pass finds it pending
        await live.result_approving_everything()
        runs = await live.runs()
        audit = await live.store.audit_entries(incident_id=incident)
        record = await live.store.get_incident(incident)
    assert runs == [COMPLETED, COMPLETED]
    assert [e.outcome for e in audit if e.type == REOPENED] == ["reopen 1"]  # not audited twice
    assert sum(e.type == "agent.triage" for e in audit) == 2
    assert record is not None and record.status is IncidentStatus.CLOSED
