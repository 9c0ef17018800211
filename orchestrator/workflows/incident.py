"""IncidentWorkflow: one durable execution per incident, from its first alert to a closed ticket.

Agents decide, this workflow acts: a playbook's proposals pass the pure risk policy here; anything
above the threshold waits for human decisions (a validated Update, or a deduplicated signal) under
SLA timers with a reminder, an escalation and a default-safe deny; allowed and approved actions run
in idempotent activities, and the playbook is resumed with the outcomes.

Alerts that join after triage are noted, audited and may cause a re-triage and a follow-up
playbook pass (see `late_alerts.py`); at a round boundary a long run continues as new, carrying
the incident's facts (`IncidentCarry`), never while an approval is pending. The ticket is kept
off this path by the ticket outbox (`tickets.py`): a ticketing outage delays the ticket, never
containment, and never fails the incident.

wait for alerts -> (ticket outbox: open, comments..., close) -> triage
  -> ((late alerts -> re-triage?) -> playbook step -> gate -> execute)* -> (late alerts)
  -> (follow-up pass when a re-triage changed the facts)* -> close -> (the ticket catches up)
"""

from __future__ import annotations

from functools import partial
from typing import TypeVar

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from agents.models import ActionOutcome, TriageResult
    from orchestrator.models import (
        AlertsAdded,
        AlertsJoinedInput,
        AlertsJoinedResult,
        CloseIncidentInput,
        DecisionAck,
        DecisionInput,
        GatedProposal,
        IncidentCarry,
        IncidentPhase,
        IncidentRef,
        IncidentResult,
        IncidentStatusView,
        IncidentWorkflowInput,
        OpenTicketInput,
        PlaybookStepInput,
        PlaybookStepResult,
        RollbackInput,
        RollbackResult,
        TicketNote,
        TicketRef,
    )
    from orchestrator.workflows.calls import call_activity
    from orchestrator.workflows.gate import (
        ApprovalGate,
        DecisionRejected,
        counted_at,
    )
    from orchestrator.workflows.guards import confirmed
    from orchestrator.workflows.late_alerts import PATCH as LATE_ALERTS_PATCH
    from orchestrator.workflows.late_alerts import (
        PlaybookPass,
        action_key,
        joined_note,
        recalled,
        triage_changed,
    )
    from orchestrator.workflows.outbox import HumanOutbox
    from orchestrator.workflows.proposals import ProposalHandler
    from orchestrator.workflows.round import answer_round
    from orchestrator.workflows.tickets import PATCH as TICKETS_PATCH
    from orchestrator.workflows.tickets import TicketOutbox, rollback_note, triage_note
    from tools.models import Verdict

_T = TypeVar("_T")


@workflow.defn(name="IncidentWorkflow")
class IncidentWorkflow:
    @workflow.init
    def __init__(self, params: IncidentWorkflowInput) -> None:
        self.params = params
        self.alert_uids: list[str] = []
        self.phase = IncidentPhase.WAITING_FOR_ALERTS
        self.started_at = workflow.now()
        self.verdict: Verdict | None = None
        self.gate = ApprovalGate(agent_identity=params.requester)
        self.outbox = HumanOutbox(params.activity)
        self.proposals = ProposalHandler(
            params, self.gate, self.outbox, self._note, self._set_phase
        )
        # Late alerts and continue-as-new (behind LATE_ALERTS_PATCH).
        self.handled_uids: list[str] = []
        self.ticket: TicketRef | None = None  # kept by the workflow itself (before TICKETS_PATCH)
        self.tickets: TicketOutbox | None = None
        self.triage: TriageResult | None = None
        self.current: PlaybookPass | None = None
        self.earlier: dict[str, ActionOutcome] = {}  # outcomes of finished passes, by action
        self.steps_this_run = 0
        if params.carry is not None:
            self._restore(params.carry)

    # ---- messages ---------------------------------------------------------------------------

    @workflow.signal(name="alerts_added")
    def alerts_added(self, added: AlertsAdded) -> None:
        for uid in added.alert_uids:
            if uid not in self.alert_uids:
                self.alert_uids.append(uid)

    @workflow.update(name="decide")
    async def decide(self, decision: DecisionInput) -> DecisionAck:
        """A human decision: counted only as the store recorded it (`guards.confirmed`)."""
        try:
            sent, claimed_at = await confirmed(self.params, self.gate, decision)
            return self.gate.apply(sent, counted_at(claimed_at, workflow.now()))
        except DecisionRejected as rejected:
            # The type carries the refusal code to the channel (an HTTP status, a Slack reply).
            raise ApplicationError(str(rejected), type=rejected.code.name) from None

    @decide.validator
    def validate_decide(self, decision: DecisionInput) -> None:
        try:
            self.gate.precheck(decision, workflow.now())
        except DecisionRejected as rejected:
            raise ApplicationError(str(rejected), type=rejected.code.name) from None

    @workflow.signal(name="decide_signal")
    async def decide_signal(self, decision: DecisionInput) -> None:
        """Fallback when no worker answered the Update in time: deduplicated, same checks."""
        if decision.decision_id in self.gate.seen_decisions:
            return
        try:
            sent, claimed_at = await confirmed(self.params, self.gate, decision)
            self.gate.apply(sent, counted_at(claimed_at, workflow.now()))
        except DecisionRejected as rejected:
            workflow.logger.warning("decision %s ignored: %s", decision.decision_id, rejected)

    @workflow.query(name="status")
    def status(self) -> IncidentStatusView:
        return IncidentStatusView(
            incident_id=self.params.incident_id,
            phase=self.phase,
            started_at=self.started_at,
            verdict=self.verdict,
            pending_approvals=[p.view() for p in self.gate.pending()],
            executed=self.proposals.executed,
            denied=self.proposals.denied,
            approvals_requested=self.proposals.approvals_requested,
            ticketing=self.tickets.view() if self.tickets else None,
        )

    # ---- the run ----------------------------------------------------------------------------

    @workflow.run
    async def run(self, params: IncidentWorkflowInput) -> IncidentResult:
        if params.carry is None:
            triage = await self._open_and_triage()
            self.phase = IncidentPhase.RESPONDING
            if not workflow.patched(LATE_ALERTS_PATCH):
                return await self._close(triage, await self._respond_v0(triage))
            self.current = PlaybookPass(triage=triage)
        elif self.tickets is not None:
            self.tickets.resume()
        self.phase = IncidentPhase.RESPONDING
        step = await self._respond()
        assert self.triage is not None
        return await self._close(self.triage, step)

    async def _open_and_triage(self) -> TriageResult:
        await workflow.wait_condition(lambda: bool(self.alert_uids))
        self.started_at = workflow.now()
        if workflow.patched(TICKETS_PATCH):
            self.tickets = TicketOutbox(self.params.incident_id, self.params.activity, self.outbox)
            self.tickets.open(self.params.title)
        else:
            opened = OpenTicketInput(incident_id=self.params.incident_id, title=self.params.title)
            self.ticket = await self._activity("tickets.open", opened, TicketRef)
        self.phase = IncidentPhase.TRIAGE
        # What triage reads from the store: every alert signalled so far (stored before that).
        self.handled_uids = list(self.alert_uids)
        return await self._triage()

    async def _triage(self) -> TriageResult:
        triage = await self._activity(
            "agents.triage",
            IncidentRef(incident_id=self.params.incident_id),
            TriageResult,
            queue=self.params.task_queue_agents,
            agent=True,
        )
        self.triage = triage
        self.verdict = triage.verdict
        await self._note(triage_note(triage))
        return triage

    async def _respond_v0(self, triage: TriageResult) -> PlaybookStepResult:
        """Histories recorded before LATE_ALERTS_PATCH: one pass, later alerts ignored."""
        step = await self._playbook_step(triage)
        for _round in range(self.params.max_rounds):
            if step.finished:
                break
            outcomes = [await self.proposals.handle(p, step.confidence) for p in step.proposals]
            step = await self._playbook_step(triage, resume=outcomes)
        return step

    async def _respond(self) -> PlaybookStepResult:
        """Playbook passes, round by round, taking in late alerts at every round boundary."""
        assert self.current is not None
        while True:
            await self._take_in_late_alerts()
            self._continue_as_new_if_long()
            current = self.current
            step = await self._pass_step(current)
            self.steps_this_run += 1
            current.started = True
            if not step.finished and current.rounds < self.params.max_rounds:
                current.resume = await answer_round(
                    step.proposals,
                    lambda p: p.proposal.action.kind,
                    partial(self._answer, current, confidence=step.confidence),
                )
                current.outcomes += current.resume
                current.rounds += 1
                continue
            # The pass is over: once more before closing, so it never closes on stale facts.
            await self._take_in_late_alerts()
            assert self.triage is not None
            if not triage_changed(current.triage, self.triage):
                return step
            self.earlier.update({action_key(o.action): o for o in current.outcomes})
            self.current = PlaybookPass(triage=self.triage, index=current.index + 1)
            await self._note(
                f"The re-triage changed the facts: playbook {self.triage.playbook_id}"
                " runs again over all the incident's alerts"
            )

    async def _pass_step(self, current: PlaybookPass) -> PlaybookStepResult:
        assert self.triage is not None
        # The running pass keeps its playbook; every round gets the latest triage.
        return await self._playbook_step(
            self.triage,
            resume=current.resume,
            playbook_id=current.triage.playbook_id,
            thread_id=current.thread_id(self.params.incident_id),
        )

    async def _answer(
        self, current: PlaybookPass, gated: GatedProposal, confidence: float
    ) -> ActionOutcome:
        earlier = self.earlier.get(action_key(gated.proposal.action)) if current.index else None
        if earlier is not None:
            return recalled(gated.proposal.action, earlier)
        return await self.proposals.handle(gated, confidence)

    async def _take_in_late_alerts(self) -> None:
        """Note alerts signalled since triage; re-triage when they bring something new."""
        handled = set(self.handled_uids)
        new = [uid for uid in self.alert_uids if uid not in handled]
        if not new:
            return
        assert self.triage is not None and self.current is not None
        joined = await self._activity(
            "incidents.alerts_joined",
            AlertsJoinedInput(
                incident_id=self.params.incident_id,
                new_uids=new,
                seen_uids=self.handled_uids,
                triage=self.triage,
            ),
            AlertsJoinedResult,
        )
        self.handled_uids = self.handled_uids + new
        await self._note(joined_note(joined, joined.needs_triage))
        if not joined.needs_triage:
            return
        phase, self.phase = self.phase, IncidentPhase.TRIAGE
        triage = await self._triage()
        self.phase = phase
        if not self.current.started:
            self.current.triage = triage

    def _continue_as_new_if_long(self) -> None:
        """At a round boundary, with nothing pending for humans, start afresh when long."""
        info = workflow.info()
        long = (
            info.is_continue_as_new_suggested()
            or info.get_current_history_length() >= self.params.continue_as_new_after_events
        )
        idle = not self.gate.pending() and not self.outbox.queue
        # At least one step per run, so a tiny threshold still makes progress.
        if long and idle and self.steps_this_run and workflow.all_handlers_finished():
            workflow.continue_as_new(self.params.model_copy(update={"carry": self._carry()}))

    def _carry(self) -> IncidentCarry:
        assert self.triage and self.current
        current = self.current
        return IncidentCarry(
            started_at=self.started_at,
            alert_uids=self.alert_uids,
            handled_uids=self.handled_uids,
            ticket=self.tickets.ticket if self.tickets else self.ticket,
            tickets=self.tickets.carry() if self.tickets else None,
            triage=self.triage,
            pass_triage=current.triage,
            pass_index=current.index,
            pass_started=current.started,
            rounds=current.rounds,
            resume=current.resume,
            pass_outcomes=current.outcomes,
            earlier_outcomes=list(self.earlier.values()),
            executed=self.proposals.executed,
            denied=self.proposals.denied,
            approvals_requested=self.proposals.approvals_requested,
            isolations=self.proposals.isolations,
            approval_wait_s=self.proposals.waiting.seconds(workflow.now()),
            execution_s=self.proposals.executing.seconds(workflow.now()),
            seen_decisions=sorted(self.gate.seen_decisions),
            decided_approvals=self.gate.decided(),
        )

    def _restore(self, carry: IncidentCarry) -> None:
        self.started_at = carry.started_at
        self.alert_uids = list(carry.alert_uids)
        self.handled_uids = list(carry.handled_uids)
        self.ticket = carry.ticket
        if carry.tickets is not None:
            self.tickets = TicketOutbox(self.params.incident_id, self.params.activity, self.outbox)
            self.tickets.restore(carry.tickets)
        self.triage = carry.triage
        self.verdict = carry.triage.verdict
        self.current = PlaybookPass(
            triage=carry.pass_triage,
            index=carry.pass_index,
            started=carry.pass_started,
            rounds=carry.rounds,
            resume=carry.resume,
            outcomes=list(carry.pass_outcomes),
        )
        self.earlier = {action_key(o.action): o for o in carry.earlier_outcomes}
        self.proposals.restore(carry)
        self.gate.restore(carry.seen_decisions, carry.decided_approvals)
        self.phase = IncidentPhase.RESPONDING

    async def _close(self, triage: TriageResult, step: PlaybookStepResult) -> IncidentResult:
        incident = self.params.incident_id
        self.verdict = step.verdict
        if step.verdict is Verdict.BENIGN and self.proposals.executed:
            await self._roll_back("the investigation concluded benign: a false positive")

        self.phase = IncidentPhase.CLOSING
        executed = self.proposals.executed
        ticket = self.tickets.ticket if self.tickets else self.ticket
        close = CloseIncidentInput(
            incident_id=incident,
            ticket_id=ticket.ticket_id if ticket else "",
            verdict=step.verdict,
            confidence=step.confidence,
            summary=step.summary,
            ticket_via_outbox=self.tickets is not None,
            started_at=self.started_at,
            first_executed=min(executed, key=lambda e: e.at) if executed else None,
        )
        if self.tickets is not None:
            self.tickets.close(close)
        await self._activity("incidents.close", close, type(None))
        self.phase = IncidentPhase.CLOSED
        if self.tickets is not None:
            await self.tickets.drain()
        await self.outbox.drain()
        if not workflow.all_handlers_finished():  # a decision still being confirmed: answer it
            await workflow.wait_condition(workflow.all_handlers_finished)
        return IncidentResult(
            incident_id=incident,
            verdict=step.verdict,
            confidence=step.confidence,
            # the category the investigation's evidence decided, triage's when it did not
            category=(
                step.report.category
                if step.report is not None and step.report.category is not None
                else triage.category
            ).value,
            started_at=self.started_at,
            closed_at=workflow.now(),
            executed=self.proposals.executed,
            denied=self.proposals.denied,
            approvals_requested=self.proposals.approvals_requested,
            summary=step.summary,
            ticketing=self.tickets.view() if self.tickets else None,
            playbook=(self.current.triage if self.current else triage).playbook_id,
        )

    async def _playbook_step(
        self,
        triage: TriageResult,
        resume: list[ActionOutcome] | None = None,
        *,
        playbook_id: str | None = None,
        thread_id: str | None = None,
    ) -> PlaybookStepResult:
        return await self._activity(
            "playbooks.step",
            PlaybookStepInput(
                incident_id=self.params.incident_id,
                playbook_id=playbook_id or triage.playbook_id,
                triage=triage,
                resume=resume,
                thread_id=thread_id,
            ),
            PlaybookStepResult,
            queue=self.params.task_queue_agents,
            agent=True,
        )

    def _set_phase(self, phase: IncidentPhase) -> None:
        self.phase = phase

    async def _roll_back(self, reason: str) -> None:
        """Compensate: run the recorded inverses of what this incident executed, newest first."""
        result = await self._activity(
            "response.rollback",
            RollbackInput(
                incident_id=self.params.incident_id,
                requested_by=self.params.requester,
                reason=reason,
            ),
            RollbackResult,
            queue=self.params.task_queue_actions,
        )
        await self._note(rollback_note(reason, result))

    async def _note(self, text: str) -> None:
        """A comment on the ticket: queued in the ticket outbox, or (histories recorded before
        it) posted here, on the incident's path."""
        if self.tickets is not None:
            self.tickets.comment(text)
            return
        assert self.ticket is not None
        note = TicketNote(
            incident_id=self.ticket.incident_id, ticket_id=self.ticket.ticket_id, text=text
        )
        await self._activity("tickets.comment", note, type(None))

    async def _activity(
        self,
        name: str,
        arg: object,
        result_type: type[_T],
        *,
        queue: str | None = None,
        agent: bool = False,
    ) -> _T:
        return await call_activity(
            self.params.activity, name, arg, result_type, queue=queue, agent=agent
        )
