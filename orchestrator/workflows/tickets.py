"""The incident's ticket, off the containment path: IncidentWorkflow's ticket outbox.

Opening the ticket, every comment and the closing note are queued here and delivered in order by
a background task of the workflow, so the incident goes on to triage, the playbook, approvals and
containment without waiting for the ticketing vendor. Each update is tried
`ticket_probe_attempts` times; when the vendor fails them the incident records "ticketing
unavailable since T" (the status query, the result, audit `ticketing.unavailable`) and tells
humans through their own channel (the human outbox: Slack, or the log), then retries that update
without an attempt limit (backoff up to `outbox_retry_max_s`) until it lands, and the rest follow
in order (`ticketing.restored`). A comment carries its idempotency key (`<incident>:<n>`) as a
marker in its body, and any delivery that may have landed already (a retry, a continued run)
looks for it before posting: a comment applied and then lost on the wire is posted once. A
permanent refusal drops the update (audited, humans told). When the incident ends it waits for
the queue, bounded by `notify_drain_s`; what is undelivered then is audited and told to humans.
Continue-as-new carries the queue (`TicketOutboxCarry`). Workflow code: deterministic.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, RetryState

with workflow.unsafe.imports_passed_through():
    from agents.models import TriageResult
    from orchestrator.models import (
        ActivityProfile,
        CloseIncidentInput,
        HumanNotice,
        OpenTicketInput,
        RollbackResult,
        TicketingEvent,
        TicketingOutage,
        TicketingStatusInput,
        TicketingView,
        TicketNote,
        TicketOutboxCarry,
        TicketRef,
        TicketWork,
        TicketWorkKind,
    )
    from orchestrator.text import defang
    from orchestrator.workflows.calls import call_activity, timeouts_for
    from orchestrator.workflows.outbox import HumanOutbox

PATCH = "ticket-outbox-v1"  # workflows recorded while the ticket was kept on the incident's path
# Refusals a retry cannot fix. Not AuthError: expired credentials are an outage that an operator
# ends, and the update waits for it like any other.
NON_RETRYABLE = ("PermanentToolError", "NotFoundError", "ValidationError")
MAX_OUTAGES = 20  # outages listed in the view (the audit has them all)

_T = TypeVar("_T")


class TicketOutbox:
    def __init__(self, incident_id: str, profile: ActivityProfile, humans: HumanOutbox) -> None:
        self.incident_id = incident_id
        self.profile = profile
        self.humans = humans
        self.ticket: TicketRef | None = None
        self.queue: list[TicketWork] = []
        self.next_seq = 1
        self.events = 0
        self.delivered = 0
        self.dropped = 0
        self.unavailable_since: datetime | None = None
        self.outages: list[TicketingOutage] = []
        self._task: asyncio.Task[None] | None = None

    # ---- what the incident asks for ------------------------------------------------------------

    def open(self, title: str) -> None:
        self._send(TicketWork(kind=TicketWorkKind.OPEN, text=title))

    def comment(self, text: str) -> None:
        self._send(TicketWork(kind=TicketWorkKind.COMMENT, seq=self.next_seq, text=text))
        self.next_seq += 1

    def close(self, close: CloseIncidentInput) -> None:
        self._send(TicketWork(kind=TicketWorkKind.CLOSE, close=close))

    async def drain(self) -> None:
        """Wait, bounded by `notify_drain_s`, for the ticket to catch up; report what did not."""
        if not self.queue:
            return
        try:
            await workflow.wait_condition(
                lambda: not self.queue, timeout=timedelta(seconds=self.profile.notify_drain_s)
            )
        except TimeoutError:
            await self._report(
                TicketingEvent.INCOMPLETE,
                f"{len(self.queue)} ticket update(s) undelivered when the incident closed",
            )

    def view(self) -> TicketingView:
        return TicketingView(
            ticket_id=self.ticket.ticket_id if self.ticket else None,
            pending=len(self.queue),
            delivered=self.delivered,
            dropped=self.dropped,
            unavailable_since=self.unavailable_since,
            outages=list(self.outages),
        )

    # ---- continue-as-new -----------------------------------------------------------------------

    def carry(self) -> TicketOutboxCarry:
        """The queue as it stands; its head may be mid-delivery, so the next run rechecks it."""
        queue = list(self.queue)
        if queue:
            queue[0] = queue[0].model_copy(update={"recheck": True})
        return TicketOutboxCarry(
            ticket=self.ticket,
            queue=queue,
            next_seq=self.next_seq,
            events=self.events,
            view=self.view(),
        )

    def restore(self, carry: TicketOutboxCarry) -> None:
        self.ticket = carry.ticket
        self.queue = list(carry.queue)
        self.next_seq = carry.next_seq
        self.events = carry.events
        self.delivered = carry.view.delivered
        self.dropped = carry.view.dropped
        self.unavailable_since = carry.view.unavailable_since
        self.outages = list(carry.view.outages)

    def resume(self) -> None:
        """Start delivering what a continued run carried (from the run, not `__init__`)."""
        if self.queue and self._task is None:
            self._task = asyncio.create_task(self._deliver())

    # ---- delivery ------------------------------------------------------------------------------

    def _send(self, work: TicketWork) -> None:
        self.queue.append(work)
        if self._task is None:
            self._task = asyncio.create_task(self._deliver())

    async def _deliver(self) -> None:
        while True:
            await workflow.wait_condition(lambda: bool(self.queue))
            await self._deliver_one(self.queue[0])
            self.queue.pop(0)

    async def _deliver_one(self, work: TicketWork) -> None:
        if work.kind is not TicketWorkKind.OPEN and self.ticket is None:
            self.dropped += 1  # the open was refused: there is no ticket to update
            return
        started = workflow.now()
        try:
            await self._attempt(work, unlimited=False)
        except ActivityError as failed:
            if failed.retry_state is RetryState.NON_RETRYABLE_FAILURE:
                await self._drop(work, failed)
                return
            if self.unavailable_since is None:
                await self._went_down(started, failed)
            try:  # any retry may follow a delivery that landed: look before posting again
                await self._attempt(work.model_copy(update={"recheck": True}), unlimited=True)
            except ActivityError as refused:
                await self._drop(work, refused)
                return
        self.delivered += 1
        if self.unavailable_since is not None:
            await self._came_back()

    async def _attempt(self, work: TicketWork, *, unlimited: bool) -> None:
        match work.kind:
            case TicketWorkKind.OPEN:
                opened = OpenTicketInput(incident_id=self.incident_id, title=work.text)
                self.ticket = await self._execute("tickets.open", opened, TicketRef, unlimited)
            case TicketWorkKind.COMMENT:
                assert self.ticket is not None
                note = TicketNote(
                    incident_id=self.incident_id,
                    ticket_id=self.ticket.ticket_id,
                    text=work.text,
                    key=f"{self.incident_id}:{work.seq}",
                    recheck=work.recheck,
                )
                await self._execute("tickets.comment", note, type(None), unlimited)
            case TicketWorkKind.CLOSE:
                assert self.ticket is not None and work.close is not None
                close = work.close.model_copy(update={"ticket_id": self.ticket.ticket_id})
                await self._execute("tickets.close", close, type(None), unlimited)

    async def _execute(self, name: str, arg: object, result: type[_T], unlimited: bool) -> _T:
        """The activity with its kind's timeouts (`GARRISON_ACTIVITIES__TICKETS__*`), but this
        outbox's attempts: the probe, then without limit."""
        kind = timeouts_for(self.profile, name)
        return await workflow.execute_activity(
            name,
            arg,
            result_type=result,
            start_to_close_timeout=timedelta(seconds=kind.start_to_close_s),
            heartbeat_timeout=timedelta(seconds=kind.heartbeat_s) if kind.heartbeat_s else None,
            retry_policy=RetryPolicy(
                initial_interval=timedelta(seconds=kind.initial_retry_s),
                maximum_interval=timedelta(
                    seconds=kind.max_retry_s or self.profile.outbox_retry_max_s
                ),
                maximum_attempts=0 if unlimited else self.profile.ticket_probe_attempts,
                non_retryable_error_types=NON_RETRYABLE,
            ),
        )

    # ---- what humans and the audit hear --------------------------------------------------------

    async def _went_down(self, since: datetime, failed: ActivityError) -> None:
        self.unavailable_since = since
        self.outages = [*self.outages, TicketingOutage(since=since)][-MAX_OUTAGES:]
        await self._report(TicketingEvent.UNAVAILABLE, _cause(failed))

    async def _came_back(self) -> None:
        since, self.unavailable_since = self.unavailable_since, None
        if self.outages and self.outages[-1].until is None:
            self.outages[-1] = self.outages[-1].model_copy(update={"until": workflow.now()})
        await self._report(TicketingEvent.RESTORED, "", since=since)

    async def _drop(self, work: TicketWork, refused: ActivityError) -> None:
        self.dropped += 1
        workflow.logger.error("ticket %s dropped: %s", work.kind.value, _cause(refused))
        if self.dropped == 1:  # once: a deleted ticket refuses every later update too
            await self._report(TicketingEvent.DROPPED, f"{work.kind.value}: {_cause(refused)}")

    async def _report(
        self, event: TicketingEvent, detail: str, *, since: datetime | None = None
    ) -> None:
        """Tell humans first (their outbox holds the notice even if this run continues as new),
        then audit; neither ever fails the incident."""
        self.events += 1
        status = TicketingStatusInput(
            incident_id=self.incident_id,
            event=event,
            seq=self.events,
            at=workflow.now(),
            since=since or self.unavailable_since,
            ticket_id=self.ticket.ticket_id if self.ticket else None,
            pending=len(self.queue),
            detail=detail[:1_000],
        )
        self.humans.send(HumanNotice(ticketing=status))
        try:
            await call_activity(self.profile, "tickets.status", status, type(None))
        except ActivityError as failed:
            workflow.logger.error("ticketing %s not audited: %s", event.value, _cause(failed))


def _cause(error: ActivityError) -> str:
    return str(error.cause or error)


def triage_note(triage: TriageResult) -> str:
    lines = [
        f"Triage: {triage.verdict.value} ({triage.confidence:.2f}),"
        f" severity {triage.severity.value}, category {triage.category.value},"
        f" playbook {triage.playbook_id}",
        *[f"- {defang(line)}" for line in triage.rationale[:10]],
    ]
    return "\n".join(lines)


def rollback_note(reason: str, result: RollbackResult) -> str:
    reverted = ", ".join(f"{a.kind.value} {defang(a.target)}" for a in result.reverted)
    return f"Rollback ({reason}): {reverted or 'nothing'}; failed: {result.failed or '-'}"
