"""`ProposalHandler`: what the incident workflow does with one proposed action, and its ledger.

Policy first (a pure function of the action, the facts and the policy, with the global breaker's
count when it may apply), then, when the policy says so, human decisions through the approval gate
under its SLA timers, then execution in an idempotent activity. A denial, an expiry and a failure
are outcomes for the playbook, never exceptions. The handler keeps what the incident executed and
refused, the approvals it asked for, its isolations and the time spent waiting and executing: the
workflow's status, result and continue-as-new carry read them here. Workflow code.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from agents.models import ActionOutcome, OutcomeStatus
    from orchestrator.models import (
        ApprovalFinalInput,
        ApprovalNotice,
        ApprovalNoticeInput,
        DeniedActionView,
        ExecuteActionInput,
        ExecuteActionResult,
        ExecutedActionView,
        ExecutionStatus,
        GatedProposal,
        HumanNotice,
        IncidentCarry,
        IncidentPhase,
        IncidentWorkflowInput,
        PolicyRecord,
    )
    from orchestrator.policy.evaluate import DecisionOutcome, PolicyDecision, evaluate
    from orchestrator.policy.model import TierName
    from orchestrator.text import defang
    from orchestrator.workflows.calls import call_activity
    from orchestrator.workflows.gate import (
        ApprovalGate,
        PendingApproval,
        new_request,
        wait_for_decision,
    )
    from orchestrator.workflows.guards import isolations_in_window
    from orchestrator.workflows.outbox import PATCH as OUTBOX_PATCH
    from orchestrator.workflows.outbox import HumanOutbox
    from orchestrator.workflows.round import BusyTime
    from tools.actions import Action, ActionKind, Patch

_T = TypeVar("_T")
# Since: a decision that humans must decide is audited by `approvals.request`, and one that allows
# an action by `response.execute`, not by an `audit.policy_decision` round trip of its own
# (`_decide`); the approval request's input carries it, its message to humans does not.
POLICY_AUDIT_PATCH = "policy-audit-folded-v1"

Note = Callable[[str], Awaitable[None]]
SetPhase = Callable[[IncidentPhase], None]


class ProposalHandler:
    """`note` puts a comment on the incident's ticket; `set_phase` tells the workflow that it
    awaits an approval (and, once none is pending, that it responds again)."""

    def __init__(
        self,
        params: IncidentWorkflowInput,
        gate: ApprovalGate,
        outbox: HumanOutbox,
        note: Note,
        set_phase: SetPhase,
    ) -> None:
        self.params = params
        self.gate = gate
        self.outbox = outbox
        self._note = note
        self._set_phase = set_phase
        self.executed: list[ExecutedActionView] = []
        self.denied: list[DeniedActionView] = []
        self.approvals_requested = 0
        self.isolations = 0
        # Workflow-time seconds so far during which an approval was awaited, an action executed.
        self.waiting = BusyTime()
        self.executing = BusyTime()

    def restore(self, carry: IncidentCarry) -> None:
        self.executed = list(carry.executed)
        self.denied = list(carry.denied)
        self.approvals_requested = carry.approvals_requested
        self.isolations = carry.isolations
        self.waiting = BusyTime(carry.approval_wait_s)
        self.executing = BusyTime(carry.execution_s)

    async def handle(self, gated: GatedProposal, confidence: float) -> ActionOutcome:
        """Policy, then approval when needed, then execution, for one proposal."""
        action = gated.proposal.action
        decision, unaudited = await self._decide(gated, confidence)
        if decision.outcome is DecisionOutcome.DENY:
            return self._refuse(action, decision.risk, "policy: " + "; ".join(decision.reasons))

        approved_by: list[str] = []
        approval_id: str | None = None
        if decision.outcome is DecisionOutcome.NEEDS_APPROVAL:
            # workflow.now() adds no command: timing leaves recorded histories replayable.
            # No `finally`: a workflow evicted mid-wait closes this coroutine outside its loop.
            self.waiting.begin(workflow.now())
            request = await self._request_approval(gated, decision, unaudited)
            self.waiting.end(workflow.now())
            approval_id = request.approval_id
            if request.outcome != "approved":
                status = (
                    OutcomeStatus.EXPIRED if request.outcome == "expired" else OutcomeStatus.DENIED
                )
                await self._note(f"{action.kind.value} {defang(action.target)}: {request.outcome}")
                return self._refuse(action, decision.risk, request.outcome or "", status)
            approved_by = request.approvers
            unaudited = None  # `approvals.request` audited it
        return await self._execute(gated, decision, approval_id, approved_by, unaudited)

    async def _decide(
        self, gated: GatedProposal, confidence: float
    ) -> tuple[PolicyDecision, PolicyRecord | None]:
        """The policy's decision on one proposal (with the global breaker's count when it may
        apply), recorded in the audit log before anything follows from it: here for a denial
        (and before `POLICY_AUDIT_PATCH`, for all), otherwise returned for the activity that acts
        on it to record first (`approvals.request`, `response.execute`), which saves a round trip
        on the way to containment."""
        action = gated.proposal.action
        policy = self.params.policy
        decision = evaluate(policy, action, gated.facts, confidence, self.isolations)
        if decision.outcome is not DecisionOutcome.DENY:
            in_window = await isolations_in_window(self.params, action)
            if in_window is not None:
                decision = evaluate(
                    policy, action, gated.facts, confidence, self.isolations, in_window
                )
        record = PolicyRecord(
            incident_id=self.params.incident_id,
            action=action,
            decision=decision,
            facts=gated.facts,
        )
        if decision.outcome is not DecisionOutcome.DENY and workflow.patched(POLICY_AUDIT_PATCH):
            return decision, record
        await self._activity("audit.policy_decision", record, type(None))
        return decision, None

    async def _execute(
        self,
        gated: GatedProposal,
        decision: PolicyDecision,
        approval_id: str | None,
        approved_by: list[str],
        unaudited: PolicyRecord | None = None,
    ) -> ActionOutcome:
        """Run an allowed (or approved) action; a failure is noted for a human, never raised.
        `unaudited`: the decision to allow it, for the activity to audit first."""
        action = gated.proposal.action
        self.executing.begin(workflow.now())
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
                    policy=unaudited,
                ),
                ExecuteActionResult,
                queue=self.params.task_queue_actions,
            )
        except ActivityError as error:
            self.executing.end(workflow.now())
            return await self._failed(action, decision.risk, error)
        self.executing.end(workflow.now())
        if result.status is ExecutionStatus.FAILED:
            return ActionOutcome(
                action=action, status=OutcomeStatus.FAILED, risk=decision.risk, detail=result.detail
            )
        if action.kind is ActionKind.ISOLATE_HOST:
            self.isolations += 1
        self.executed.append(self._executed_view(gated, decision, result, approval_id, approved_by))
        await self._note(f"{action.kind.value} {defang(action.target)}: {result.status.value}")
        status = (
            OutcomeStatus.ALREADY_IN_STATE
            if result.status is ExecutionStatus.ALREADY_IN_STATE
            else OutcomeStatus.EXECUTED
        )
        return ActionOutcome(action=action, status=status, risk=decision.risk, detail=result.detail)

    async def _failed(self, action: Action, risk: int, error: ActivityError) -> ActionOutcome:
        """The execution failed for good (retries spent or not retryable): a human takes over."""
        task = (
            f" (apply {action.remediation} for {action.cve} by hand)"
            if isinstance(action, Patch)
            else ""
        )
        await self._note(f"{action.kind.value} {defang(action.target)} FAILED: needs a human{task}")
        return ActionOutcome(
            action=action, status=OutcomeStatus.FAILED, risk=risk, detail=str(error.cause)
        )

    def _executed_view(
        self,
        gated: GatedProposal,
        decision: PolicyDecision,
        result: ExecuteActionResult,
        approval_id: str | None,
        approved_by: list[str],
    ) -> ExecutedActionView:
        now = workflow.now()
        return ExecutedActionView(
            action=gated.proposal.action,
            risk=decision.risk,
            approved_by=approved_by,
            approval_required=decision.outcome is DecisionOutcome.NEEDS_APPROVAL,
            protected=gated.facts.protected,
            at=now,
            already_in_state=result.status is ExecutionStatus.ALREADY_IN_STATE,
            # an action that waited counts the wait still open beside its own; one that did
            # not wait counts only the waits already over when it ran
            approval_wait_s=self.waiting.seconds(now) if approval_id else self.waiting.total_s,
            execution_s=self.executing.seconds(now),
        )

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
        self, gated: GatedProposal, decision: PolicyDecision, unaudited: PolicyRecord | None
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
        await self.outbox.record(
            "approvals.request",
            HumanNotice(request=request_input),
            via_outbox=outbox,
            arg=request_input.model_copy(update={"policy": unaudited}),
        )
        self._set_phase(IncidentPhase.AWAITING_APPROVAL)

        async def notify(notice: ApprovalNotice) -> None:
            notice_input = ApprovalNoticeInput(
                approval_id=request.approval_id,
                incident_id=self.params.incident_id,
                notice=notice,
                via_outbox=outbox,
            )
            message = HumanNotice(notice=notice_input)
            await self.outbox.record("approvals.notify", message, via_outbox=outbox)

        await wait_for_decision(
            request, tier, notify, lambda: self.gate.confirming_for(request.approval_id)
        )
        if not self.gate.pending():  # requests of the same round may still be waiting
            self._set_phase(IncidentPhase.RESPONDING)
        final = ApprovalFinalInput(
            approval_id=request.approval_id,
            incident_id=self.params.incident_id,
            status=request.outcome or "expired",
            decisions=request.decisions,
            at=workflow.now(),
            via_outbox=outbox,
        )
        await self.outbox.record("approvals.finalize", HumanNotice(final=final), via_outbox=outbox)
        return request

    async def _activity(
        self, name: str, arg: object, result_type: type[_T], *, queue: str | None = None
    ) -> _T:
        return await call_activity(self.params.activity, name, arg, result_type, queue=queue)
