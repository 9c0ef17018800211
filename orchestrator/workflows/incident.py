"""IncidentWorkflow: one durable execution per incident, from its first alert to a closed ticket.

Agents decide, this workflow acts: a playbook's proposals pass the pure risk policy here; anything
above the threshold waits for human decisions (a validated Update, or a deduplicated signal) under
SLA timers with a reminder, an escalation and a default-safe deny; allowed and approved actions run
in idempotent activities, and the playbook is resumed with the outcomes.

wait for alerts -> open ticket -> triage -> (playbook step -> gate -> execute)* -> close
"""

from __future__ import annotations

from typing import TypeVar

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from agents.models import ActionOutcome, OutcomeStatus, TriageResult
    from orchestrator.models import (
        AlertsAdded,
        ApprovalFinalInput,
        ApprovalNotice,
        ApprovalNoticeInput,
        CloseIncidentInput,
        DecisionAck,
        DecisionInput,
        DeniedActionView,
        ExecuteActionInput,
        ExecuteActionResult,
        ExecutedActionView,
        ExecutionStatus,
        GatedProposal,
        HumanNotice,
        IncidentPhase,
        IncidentRef,
        IncidentResult,
        IncidentStatusView,
        IncidentWorkflowInput,
        OpenTicketInput,
        PlaybookStepInput,
        PlaybookStepResult,
        PolicyRecord,
        RollbackInput,
        RollbackResult,
        TicketNote,
        TicketRef,
    )
    from orchestrator.policy.evaluate import DecisionOutcome, PolicyDecision, evaluate
    from orchestrator.policy.model import TierName
    from orchestrator.text import defang
    from orchestrator.workflows.calls import call_activity
    from orchestrator.workflows.gate import (
        ApprovalGate,
        DecisionRejected,
        PendingApproval,
        new_request,
        wait_for_decision,
    )
    from orchestrator.workflows.outbox import PATCH as OUTBOX_PATCH
    from orchestrator.workflows.outbox import HumanOutbox
    from tools.actions import Action, ActionKind
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
        self.executed: list[ExecutedActionView] = []
        self.denied: list[DeniedActionView] = []
        self.approvals_requested = 0
        self.isolations = 0
        # Workflow-time seconds so far spent awaiting approvals and in `response.execute`.
        self.approval_wait_s = 0.0
        self.execution_s = 0.0
        self.outbox = HumanOutbox(params.activity)

    # ---- messages ---------------------------------------------------------------------------

    @workflow.signal(name="alerts_added")
    def alerts_added(self, added: AlertsAdded) -> None:
        for uid in added.alert_uids:
            if uid not in self.alert_uids:
                self.alert_uids.append(uid)

    @workflow.update(name="decide")
    def decide(self, decision: DecisionInput) -> DecisionAck:
        return self.gate.apply(decision, workflow.now())

    @decide.validator
    def validate_decide(self, decision: DecisionInput) -> None:
        try:
            self.gate.validate(decision, workflow.now())
        except DecisionRejected as rejected:
            # The type carries the refusal code to the channel (an HTTP status, a Slack reply).
            raise ApplicationError(str(rejected), type=rejected.code.name) from None

    @workflow.signal(name="decide_signal")
    def decide_signal(self, decision: DecisionInput) -> None:
        """Fallback when no worker answered the Update in time: deduplicated, same checks."""
        if decision.decision_id in self.gate.seen_decisions:
            return
        try:
            self.gate.apply(decision, workflow.now())
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
            executed=self.executed,
            denied=self.denied,
            approvals_requested=self.approvals_requested,
        )

    # ---- the run ----------------------------------------------------------------------------

    @workflow.run
    async def run(self, params: IncidentWorkflowInput) -> IncidentResult:
        await workflow.wait_condition(lambda: bool(self.alert_uids))
        self.started_at = workflow.now()
        incident = params.incident_id
        ticket = await self._activity(
            "tickets.open", OpenTicketInput(incident_id=incident, title=params.title), TicketRef
        )
        self.phase = IncidentPhase.TRIAGE
        triage = await self._activity(
            "agents.triage",
            IncidentRef(incident_id=incident),
            TriageResult,
            queue=params.task_queue_agents,
            agent=True,
        )
        self.verdict = triage.verdict
        await self._note(ticket, _triage_note(triage))

        self.phase = IncidentPhase.RESPONDING
        step = await self._playbook_step(triage)
        for _round in range(params.max_rounds):
            if step.finished:
                break
            outcomes = [await self._handle(ticket, p, step.confidence) for p in step.proposals]
            step = await self._playbook_step(triage, resume=outcomes)
        self.verdict = step.verdict
        if step.verdict is Verdict.BENIGN and self.executed:
            await self._roll_back(ticket, "the investigation concluded benign: a false positive")

        self.phase = IncidentPhase.CLOSING
        await self._activity(
            "incidents.close",
            CloseIncidentInput(
                incident_id=incident,
                ticket_id=ticket.ticket_id,
                verdict=step.verdict,
                confidence=step.confidence,
                summary=step.summary,
            ),
            type(None),
        )
        self.phase = IncidentPhase.CLOSED
        await self.outbox.drain()
        return IncidentResult(
            incident_id=incident,
            verdict=step.verdict,
            confidence=step.confidence,
            category=triage.category.value,
            started_at=self.started_at,
            closed_at=workflow.now(),
            executed=self.executed,
            denied=self.denied,
            approvals_requested=self.approvals_requested,
            summary=step.summary,
        )

    async def _playbook_step(
        self, triage: TriageResult, resume: list[ActionOutcome] | None = None
    ) -> PlaybookStepResult:
        return await self._activity(
            "playbooks.step",
            PlaybookStepInput(
                incident_id=self.params.incident_id,
                playbook_id=triage.playbook_id,
                triage=triage,
                resume=resume,
            ),
            PlaybookStepResult,
            queue=self.params.task_queue_agents,
            agent=True,
        )

    async def _handle(
        self, ticket: TicketRef, gated: GatedProposal, confidence: float
    ) -> ActionOutcome:
        """Policy, then approval when needed, then execution, for one proposal."""
        action = gated.proposal.action
        decision = evaluate(
            self.params.policy, action, gated.facts, confidence, isolations_so_far=self.isolations
        )
        await self._activity(
            "audit.policy_decision",
            PolicyRecord(
                incident_id=self.params.incident_id,
                action=action,
                decision=decision,
                facts=gated.facts,
            ),
            type(None),
        )
        if decision.outcome is DecisionOutcome.DENY:
            return self._refuse(action, decision.risk, "policy: " + "; ".join(decision.reasons))

        approved_by: list[str] = []
        approval_id: str | None = None
        if decision.outcome is DecisionOutcome.NEEDS_APPROVAL:
            # workflow.now() adds no command: timing leaves recorded histories replayable.
            asked_at = workflow.now()
            request = await self._request_approval(gated, decision)
            self.approval_wait_s += (workflow.now() - asked_at).total_seconds()
            approval_id = request.approval_id
            if request.outcome != "approved":
                status = (
                    OutcomeStatus.EXPIRED if request.outcome == "expired" else OutcomeStatus.DENIED
                )
                await self._note(
                    ticket, f"{action.kind.value} {defang(action.target)}: {request.outcome}"
                )
                return self._refuse(action, decision.risk, request.outcome or "", status)
            approved_by = request.approvers

        execute_at = workflow.now()
        try:
            result = await self._activity(
                "response.execute",
                ExecuteActionInput(
                    incident_id=self.params.incident_id,
                    action=action,
                    risk=decision.risk,
                    approval_id=approval_id,
                    approved_by=approved_by,
                    policy_version=decision.policy_version,
                ),
                ExecuteActionResult,
                queue=self.params.task_queue_actions,
            )
        except ActivityError as error:
            self.execution_s += (workflow.now() - execute_at).total_seconds()
            await self._note(
                ticket, f"{action.kind.value} {defang(action.target)} FAILED: needs a human"
            )
            return ActionOutcome(
                action=action,
                status=OutcomeStatus.FAILED,
                risk=decision.risk,
                detail=str(error.cause),
            )
        self.execution_s += (workflow.now() - execute_at).total_seconds()
        if result.status is ExecutionStatus.FAILED:
            return ActionOutcome(
                action=action, status=OutcomeStatus.FAILED, risk=decision.risk, detail=result.detail
            )
        if action.kind is ActionKind.ISOLATE_HOST:
            self.isolations += 1
        self.executed.append(
            ExecutedActionView(
                action=action,
                risk=decision.risk,
                approved_by=approved_by,
                approval_required=decision.outcome is DecisionOutcome.NEEDS_APPROVAL,
                protected=gated.facts.protected,
                at=workflow.now(),
                already_in_state=result.status is ExecutionStatus.ALREADY_IN_STATE,
                approval_wait_s=self.approval_wait_s,
                execution_s=self.execution_s,
            )
        )
        await self._note(
            ticket, f"{action.kind.value} {defang(action.target)}: {result.status.value}"
        )
        status = (
            OutcomeStatus.ALREADY_IN_STATE
            if result.status is ExecutionStatus.ALREADY_IN_STATE
            else OutcomeStatus.EXECUTED
        )
        return ActionOutcome(action=action, status=status, risk=decision.risk, detail=result.detail)

    def _refuse(
        self,
        action: Action,
        risk: int,
        reason: str,
        status: OutcomeStatus = OutcomeStatus.DENIED,
    ) -> ActionOutcome:
        self.denied.append(DeniedActionView(action=action, risk=risk, reason=reason))
        return ActionOutcome(action=action, status=status, risk=risk, detail=reason)

    async def _request_approval(
        self, gated: GatedProposal, decision: PolicyDecision
    ) -> PendingApproval:
        """Ask humans, then wait: reminder, escalation, and the default-safe expiry."""
        policy = self.params.policy
        tier = policy.tiers[decision.tier or TierName.STANDARD]
        request = new_request(
            self.params.incident_id,
            gated.proposal.action,
            decision,
            tier,
            requester=self.params.requester,
            now=workflow.now(),
        )
        self.gate.open(request)
        self.approvals_requested += 1
        outbox = workflow.patched(OUTBOX_PATCH)
        request_input = request.request_input(
            self.params.incident_id, decision, gated.proposal
        ).model_copy(update={"via_outbox": outbox})
        await self._activity("approvals.request", request_input, type(None))
        if outbox:
            self.outbox.send(HumanNotice(request=request_input))
        self.phase = IncidentPhase.AWAITING_APPROVAL

        async def notify(notice: ApprovalNotice) -> None:
            notice_input = ApprovalNoticeInput(
                approval_id=request.approval_id,
                incident_id=self.params.incident_id,
                notice=notice,
                via_outbox=outbox,
            )
            await self._activity("approvals.notify", notice_input, type(None))
            if outbox:
                self.outbox.send(HumanNotice(notice=notice_input))

        await wait_for_decision(request, tier, notify)
        self.phase = IncidentPhase.RESPONDING
        final = ApprovalFinalInput(
            approval_id=request.approval_id,
            incident_id=self.params.incident_id,
            status=request.outcome or "expired",
            decisions=request.decisions,
            at=workflow.now(),
            via_outbox=outbox,
        )
        await self._activity("approvals.finalize", final, type(None))
        if outbox:
            self.outbox.send(HumanNotice(final=final))
        return request

    async def _roll_back(self, ticket: TicketRef, reason: str) -> None:
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
        reverted = (
            ", ".join(f"{a.kind.value} {defang(a.target)}" for a in result.reverted) or "nothing"
        )
        await self._note(ticket, f"Rollback ({reason}): {reverted}; failed: {result.failed or '-'}")

    async def _note(self, ticket: TicketRef, text: str) -> None:
        await self._activity(
            "tickets.comment",
            TicketNote(incident_id=ticket.incident_id, ticket_id=ticket.ticket_id, text=text),
            type(None),
        )

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


def _triage_note(triage: TriageResult) -> str:
    lines = [
        f"Triage: {triage.verdict.value} ({triage.confidence:.2f}),"
        f" severity {triage.severity.value}, category {triage.category.value},"
        f" playbook {triage.playbook_id}",
        *[f"- {defang(line)}" for line in triage.rationale[:10]],
    ]
    return "\n".join(lines)
