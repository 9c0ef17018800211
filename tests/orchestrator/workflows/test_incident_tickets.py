"""The ticket outbox of IncidentWorkflow on a real Temporal dev server, with the real ticket
activities and Jira adapter over loopback HTTP to the Jira emulator and its fault knobs, a real
SQLite store, and fakes for the rest: containment never waits for the ticket, a Jira outage never
fails the incident, and once Jira is back the ticket and each comment exist exactly once, in
order, also across continue-as-new and when Jira applies a comment and drops the connection."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from temporalio import activity
from temporalio.client import Client, WorkflowHandle
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

from orchestrator.activities.records import RecordActivities
from orchestrator.composition import open_store
from orchestrator.models import (
    ActivityProfile,
    IncidentPhase,
    IncidentResult,
    IncidentStatusView,
    OpenTicketInput,
    TicketingEvent,
    TicketRef,
)
from orchestrator.settings import GarrisonSettings
from orchestrator.store.records import IncidentRecord, IncidentStatus
from orchestrator.store.repository import Store
from orchestrator.workflows.incident import IncidentWorkflow
from simulations.backends import memory_backends
from tests.orchestrator.workflows.harness import (
    FakeActivities,
    Script,
    decision,
    facts,
    incident_worker,
    new_incident_id,
    new_queue,
    start_incident,
    workflow_input,
)
from tests.orchestrator.workflows.test_incident_approvals import pending_approval
from tests.tools.contracts.world import environment, events
from tools.actions import IsolateHost, KillProcess, TargetKind
from tools.emulators.base import EmulatorState
from tools.emulators.serve import serve
from tools.results import Ticket, TicketState
from tools.ticketing.emulators import jira as jira_emulator
from tools.ticketing.jira import JiraTicketing
from tools.ticketing.vendors import VENDORS
from tools.toolsets import ResponseTools

pytestmark = pytest.mark.temporal

Handle = WorkflowHandle[IncidentWorkflow, IncidentResult]
# Quick probes and short backoff, so a test's outage and recovery take seconds.
PROFILE = ActivityProfile(
    initial_retry_s=0.2, outbox_retry_max_s=1.0, ticket_probe_attempts=2, notify_drain_s=300
)
TICKET_ACTIVITIES = ("tickets.open", "tickets.comment", "tickets.close", "tickets.status")
JIRA = "/rest/api/3"


@dataclass
class JiraBackends:
    """Every incident's responders: in-memory twins, but tickets go to the Jira adapter."""

    responders: ResponseTools

    def response_tools(self, incident_id: str) -> ResponseTools:
        return self.responders

    def read_tools(self, incident_id: str) -> Any:
        raise AssertionError("ticket activities read nothing")


@dataclass
class Rig:
    client: Client
    store: Store
    jira: JiraTicketing
    state: EmulatorState
    script: Script
    activities: list[Callable[..., Any]]
    queue: str

    async def ticket(self, incident_id: str) -> Ticket:
        found = await self.jira.find_ticket(incident_id)
        assert found is not None, "no Jira issue carries the incident's label"
        return found

    def created(self, path_end: str) -> int:
        """Writes Jira applied and answered (201) on paths ending so."""
        return sum(
            1
            for e in self.state.ledger
            if e.method == "POST" and e.path.endswith(path_end) and e.status == 201
        )


@asynccontextmanager
async def jira_rig(client: Client, tmp_path: Path, script: Script) -> AsyncIterator[Rig]:
    spec = next(s for s in VENDORS if s.name == "jira")
    state = EmulatorState()
    async with AsyncExitStack() as stack:
        url = await stack.enter_async_context(
            serve(jira_emulator.build_emulator(environment(), events(), state))
        )
        jira = JiraTicketing(spec.emulator_settings(url).model_copy(update={"search_settle_s": 1}))
        stack.push_async_callback(jira.aclose)
        store = await open_store(GarrisonSettings(data_dir=tmp_path))
        stack.push_async_callback(store.close)
        _, responders = memory_backends(environment(), events())
        backends = JiraBackends(dataclasses.replace(responders, ticketing=jira))
        records = RecordActivities(store, backends)
        real = [
            records.open_ticket,
            records.comment,
            records.close_ticket,
            records.ticketing_status,
            records.close,
        ]
        fakes = [
            fake
            for fake in FakeActivities(script).all()
            if _name(fake) not in (*TICKET_ACTIVITIES, "incidents.close")
        ]
        yield Rig(client, store, jira, state, script, [*fakes, *real], new_queue())


def _name(activity_fn: Callable[..., Any]) -> str:
    return activity_fn.__temporal_activity_definition.name  # type: ignore[attr-defined]


async def _open_incident(rig: Rig, **params: Any) -> Handle:
    incident_id = new_incident_id()
    await rig.store.ensure_incident(
        IncidentRecord(
            id=incident_id,
            group_key=f"test:{incident_id}",
            title="test incident",
            status=IncidentStatus.OPEN,
            opened_at=datetime.now(UTC),
        )
    )
    inputs = workflow_input(incident_id, rig.queue, activity=PROFILE).model_copy(update=params)
    return await start_incident(rig.client, inputs)


async def _status_until(
    handle: Handle, ready: Callable[[IncidentStatusView], bool]
) -> IncidentStatusView:
    deadline = time.monotonic() + 60
    while True:
        status: IncidentStatusView = await handle.query(IncidentWorkflow.status)
        if ready(status):
            return status
        assert time.monotonic() < deadline, f"the incident never got there: {status}"
        await asyncio.sleep(0.1)


def _markers(ticket: Ticket, incident_id: str) -> list[str]:
    """The idempotency key of each comment, in order (the closing note carries none)."""
    prefix = f"[garrison:{incident_id}:"
    return [
        line[len(prefix) : -1]
        for comment in ticket.comments
        for line in comment.splitlines()
        if line.startswith(prefix)
    ]


async def test_jira_down_through_triage_and_containment_delays_the_ticket_not_containment(
    temporal_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    script = Script(
        proposals=[
            (KillProcess(target="WS02:4242"), facts(kind=TargetKind.PROCESS)),  # allowed
            (IsolateHost(target="WS01"), facts(protected=True)),  # needs an approval
        ]
    )
    async with jira_rig(temporal_env.client, tmp_path, script) as rig:
        rig.state.faults.fail_5xx = 1_000_000  # every Jira request answers 503
        async with incident_worker(temporal_env.client, rig.queue, rig.activities):
            handle = await _open_incident(rig)
            incident_id = handle.id.removeprefix("incident-")
            request = await pending_approval(handle)
            await handle.execute_update(
                IncidentWorkflow.decide,
                decision(
                    request.approval_id, request.action_hash, "alice", [request.approver_group]
                ),
            )
            # Containment is done and the incident closed in the store while Jira is down; the
            # outage is recorded, and humans told through their own channel.
            down = await _status_until(
                handle,
                lambda s: (
                    s.phase is IncidentPhase.CLOSED
                    and s.ticketing is not None
                    and s.ticketing.unavailable_since is not None
                    and any(n.ticketing for n in script.announced)
                ),
            )
            assert [e.action.target for e in down.executed] == ["WS02:4242", "WS01"]
            assert down.ticketing is not None and down.ticketing.ticket_id is None
            assert down.ticketing.unavailable_since is not None
            assert down.ticketing.pending == 5  # open, triage, two actions, the closing note
            assert down.ticketing.unavailable_since <= down.executed[0].at
            stored = await rig.store.get_incident(incident_id)
            assert stored is not None and stored.status is IncidentStatus.CLOSED
            told = [n.ticketing.event for n in script.announced if n.ticketing]
            assert told == [TicketingEvent.UNAVAILABLE]
            assert rig.created("/issue") == 0

            rig.state.faults.fail_5xx = 0  # Jira is back
            result = await asyncio.wait_for(handle.result(), timeout=60)

        ticket = await rig.ticket(incident_id)
        audit = [e.type for e in await rig.store.audit_entries(incident_id=incident_id)]
    assert [e.action.target for e in result.executed] == ["WS02:4242", "WS01"]
    assert result.ticketing is not None
    assert (result.ticketing.pending, result.ticketing.dropped) == (0, 0)
    assert result.ticketing.delivered == 5 and result.ticketing.unavailable_since is None
    (outage,) = result.ticketing.outages
    assert outage.until is not None and outage.since < outage.until <= result.closed_at
    # One issue, each comment once and in order, then the closing note; the ticket is closed.
    assert rig.created("/issue") == 1
    assert rig.created("/comment") == 3
    assert _markers(ticket, incident_id) == ["1", "2", "3"]
    assert ticket.comments[0].startswith("Triage: malicious")
    assert ticket.comments[1].startswith("kill_process WS02:4242: executed")
    assert ticket.comments[2].startswith("isolate_host WS01: executed")
    assert (
        ticket.comments[3].startswith("Verdict: malicious") and ticket.state is TicketState.CLOSED
    )
    told = [n.ticketing.event for n in script.announced if n.ticketing]
    assert told == [TicketingEvent.UNAVAILABLE, TicketingEvent.RESTORED]
    assert audit.count("ticketing.unavailable") == audit.count("ticketing.restored") == 1
    assert audit.count("ticket.opened") == 1 and audit.count("ticket.closed") == 1


async def test_jira_applying_each_comment_then_dropping_the_connection_gets_each_once(
    temporal_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    script = Script(proposals=[(KillProcess(target="WS02:4242"), facts(kind=TargetKind.PROCESS))])
    async with jira_rig(temporal_env.client, tmp_path, script) as rig:
        rig.state.faults.reset_after_apply = {"add_comment"}  # for the whole run
        async with incident_worker(temporal_env.client, rig.queue, rig.activities):
            handle = await _open_incident(rig)
            result = await asyncio.wait_for(handle.result(), timeout=60)
        incident_id = result.incident_id
        ticket = await rig.ticket(incident_id)
        posted = [
            e.status for e in rig.state.ledger if e.method == "POST" and e.path.endswith("/comment")
        ]
    assert [e.action.target for e in result.executed] == ["WS02:4242"]
    # Each comment was applied once (its answer lost each time); each retry found its marker.
    assert len(posted) == 2
    assert _markers(ticket, incident_id) == ["1", "2"]
    assert ticket.comments[1].startswith("kill_process WS02:4242: executed")
    assert ticket.state is TicketState.CLOSED
    assert result.ticketing is not None and result.ticketing.delivered == 4


async def test_ticket_work_pending_in_an_outage_is_carried_across_continue_as_new(
    temporal_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    """A run that continues as new while Jira is down hands its queue to the next run, which
    delivers it once Jira is back: the ticket once, every comment once, in order."""
    script = Script(proposals=[(KillProcess(target="WS02:4242"), facts(kind=TargetKind.PROCESS))])
    async with jira_rig(temporal_env.client, tmp_path, script) as rig:
        rig.state.faults.fail_5xx = 1_000_000
        async with incident_worker(temporal_env.client, rig.queue, rig.activities):
            handle = await _open_incident(rig, continue_as_new_after_events=1)
            incident_id = handle.id.removeprefix("incident-")
            await _status_until(handle, lambda s: s.phase is IncidentPhase.CLOSED)
            runs = [run async for run in rig.client.list_workflows(f"WorkflowId = '{handle.id}'")]
            assert len(runs) == 2  # the first run continued as new
            rig.state.faults.fail_5xx = 0
            result = await asyncio.wait_for(handle.result(), timeout=60)
        ticket = await rig.ticket(incident_id)
    assert [e.action.target for e in result.executed] == ["WS02:4242"]
    assert rig.created("/issue") == 1
    assert rig.created("/comment") == 2
    assert _markers(ticket, incident_id) == ["1", "2"]
    assert (
        ticket.comments[2].startswith("Verdict: malicious") and ticket.state is TicketState.CLOSED
    )
    assert result.ticketing is not None and result.ticketing.pending == 0


class TicketingNeverAnswers(FakeActivities):
    @activity.defn(name="tickets.open")
    async def open_ticket(self, request: OpenTicketInput) -> TicketRef:
        raise ApplicationError("jira: 503", type="TransientToolError")


class TicketingRefuses(FakeActivities):
    @activity.defn(name="tickets.open")
    async def open_ticket(self, request: OpenTicketInput) -> TicketRef:
        raise ApplicationError("jira: 400 project", type="PermanentToolError", non_retryable=True)


async def _run_with_fakes(env: WorkflowEnvironment, fakes: FakeActivities) -> IncidentResult:
    queue = new_queue()
    profile = PROFILE.model_copy(update={"notify_drain_s": 3})
    async with incident_worker(env.client, queue, fakes.all()):
        handle = await start_incident(
            env.client, workflow_input(new_incident_id(), queue, activity=profile)
        )
        return await asyncio.wait_for(handle.result(), timeout=60)


async def test_a_vendor_that_never_returns_leaves_the_ticket_incomplete_not_the_incident(
    temporal_env: WorkflowEnvironment,
) -> None:
    script = Script(proposals=[(KillProcess(target="WS02:4242"), facts(kind=TargetKind.PROCESS))])
    result = await _run_with_fakes(temporal_env, TicketingNeverAnswers(script))

    assert [e.action.target for e in result.executed] == ["WS02:4242"]
    assert script.closed and script.closed[0].ticket_via_outbox  # closed in the store
    assert result.ticketing is not None
    assert (result.ticketing.ticket_id, result.ticketing.pending) == (None, 4)
    assert result.ticketing.unavailable_since is not None
    events = [s.event for s in script.ticketing]
    assert events == [TicketingEvent.UNAVAILABLE, TicketingEvent.INCOMPLETE]
    told = [n.ticketing for n in script.announced if n.ticketing]
    assert [t.event for t in told] == events and told[1].pending == 4
    assert script.comments == [] and script.tickets_closed == []


async def test_a_refused_ticket_drops_its_updates_once_told_and_the_incident_completes(
    temporal_env: WorkflowEnvironment,
) -> None:
    script = Script(proposals=[(KillProcess(target="WS02:4242"), facts(kind=TargetKind.PROCESS))])
    result = await _run_with_fakes(temporal_env, TicketingRefuses(script))

    assert [e.action.target for e in result.executed] == ["WS02:4242"]
    assert result.ticketing is not None
    assert (result.ticketing.pending, result.ticketing.dropped) == (0, 4)
    assert result.ticketing.outages == []  # refused is not unavailable
    assert [s.event for s in script.ticketing] == [TicketingEvent.DROPPED]
    assert script.ticketing[0].detail == "open: PermanentToolError: jira: 400 project"
    assert script.comments == [] and script.tickets_closed == []
