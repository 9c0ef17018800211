"""The approval gate's state inside `IncidentWorkflow`: pending requests, decision validation,
the quorum rule, and the wait for a decision under the tier's reminder, escalation and expiry (at
absolute times fixed when the request opens). Deterministic (workflow code): no I/O, no clock
but the workflow's.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from agents.models import ProposedAction
    from orchestrator.identity import IdentityError, canonical_identity, same_identity
    from orchestrator.models import (
        ApprovalNotice,
        ApprovalRequestInput,
        ApprovalStage,
        DecisionAck,
        DecisionInput,
        DecisionKind,
        PendingApprovalView,
        RefusalCode,
    )
    from orchestrator.policy.evaluate import PolicyDecision
    from orchestrator.policy.model import Tier
    from tools.actions import Action, action_hash

# Workflows recorded while each timer started when the previous one fired (late by any downtime).
ABSOLUTE_DEADLINES_PATCH = "absolute-deadlines-v1"
# Workflows recorded while expiry fired with a decision's confirmation still in flight (a decision
# recorded before expiry was then refused as expired).
CONFIRMATIONS_BEFORE_EXPIRY_PATCH = "confirmations-before-expiry-v1"


class DecisionRejected(Exception):
    """A decision the gate refuses; the message says why and is shown to the decider."""

    def __init__(self, message: str, code: RefusalCode = RefusalCode.REFUSED) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class PendingApproval:
    approval_id: str
    action: Action
    action_hash: str
    risk: int
    required: int
    requester: str
    approver_group: str
    escalation_group: str
    requested_at: datetime
    deadline: datetime
    expires_at: datetime
    stage: ApprovalStage = ApprovalStage.PRIMARY
    decisions: list[DecisionInput] = field(default_factory=list)
    outcome: str | None = None  # approved | denied | expired

    @property
    def approvers(self) -> list[str]:
        return [d.user for d in self.decisions if d.decision is DecisionKind.APPROVE]

    def request_input(
        self, incident_id: str, decision: PolicyDecision, proposal: ProposedAction
    ) -> ApprovalRequestInput:
        return ApprovalRequestInput(
            approval_id=self.approval_id,
            incident_id=incident_id,
            action=self.action,
            action_hash=self.action_hash,
            decision=decision,
            requester=self.requester,
            approver_group=self.approver_group,
            escalation_group=self.escalation_group,
            requested_at=self.requested_at,
            deadline=self.deadline,
            expires_at=self.expires_at,
            rationale=proposal.rationale,
            evidence=proposal.evidence,
            rationale_from_model=proposal.from_model,
        )

    def view(self) -> PendingApprovalView:
        return PendingApprovalView(
            approval_id=self.approval_id,
            action=self.action,
            action_hash=self.action_hash,
            risk=self.risk,
            required_approvers=self.required,
            approvers=self.approvers,
            requested_at=self.requested_at,
            deadline=self.deadline,
            expires_at=self.expires_at,
            stage=self.stage,
            approver_group=self.approver_group,
            escalation_group=self.escalation_group,
        )


class ApprovalGate:
    def __init__(self, agent_identity: str) -> None:
        self.agent_identity = agent_identity
        self.requests: dict[str, PendingApproval] = {}
        self.seen_decisions: set[str] = set()
        # Decisions being looked up in the store right now: decision id -> approval id.
        self.confirming: dict[str, str] = {}
        # Requests decided in an earlier run of the workflow (before a continue-as-new).
        self.decided_before: dict[str, str] = {}

    def restore(self, seen_decisions: list[str], decided: dict[str, str]) -> None:
        self.seen_decisions.update(seen_decisions)
        self.decided_before.update(decided)

    def decided(self) -> dict[str, str]:
        """Every decided request's outcome, by approval id (what a continued run carries)."""
        done = {r.approval_id: r.outcome for r in self.requests.values() if r.outcome is not None}
        return {**self.decided_before, **done}

    def open(self, request: PendingApproval) -> None:
        self.requests[request.approval_id] = request

    def pending(self) -> list[PendingApproval]:
        return [r for r in self.requests.values() if r.outcome is None]

    def confirming_for(self, approval_id: str) -> bool:
        """Whether a decision on this request is being confirmed against the store now."""
        return approval_id in self.confirming.values()

    def precheck(self, decision: DecisionInput, now: datetime) -> PendingApproval:
        """The checks that hold whoever sent the decision (the Update's validator): the request
        exists, is undecided, unexpired, and bound to the hash the decider saw. Who decided is
        checked only once the store has confirmed the decision (`validate`)."""
        request = self.requests.get(decision.approval_id)
        if request is None and decision.approval_id in self.decided_before:
            outcome = self.decided_before[decision.approval_id]
            raise DecisionRejected(f"already decided: {outcome}", RefusalCode.DECIDED)
        if request is None:
            raise DecisionRejected(f"unknown approval {decision.approval_id}", RefusalCode.UNKNOWN)
        if request.outcome is not None:
            raise DecisionRejected(f"already decided: {request.outcome}", RefusalCode.DECIDED)
        if now >= request.expires_at:
            raise DecisionRejected("the request has expired")
        if decision.action_hash != request.action_hash:
            raise DecisionRejected(
                "the action changed since it was shown: hash mismatch", RefusalCode.CHANGED
            )
        return request

    def validate(self, decision: DecisionInput, now: datetime) -> PendingApproval:
        """Raise DecisionRejected unless this decision may be applied now. Identities compare
        in their one spelling (`orchestrator.identity`): " alice", "Alice" and "alice" are one
        approver."""
        request = self.precheck(decision, now)
        try:
            user = canonical_identity(decision.user)
        except IdentityError as error:
            raise DecisionRejected(
                f"no usable approver identity: {error}", RefusalCode.UNAUTHORISED
            ) from None
        if same_identity(user, request.requester) or same_identity(user, self.agent_identity):
            raise DecisionRejected(
                f"{user} requested this action and cannot decide it", RefusalCode.SELF_APPROVAL
            )
        allowed = {request.approver_group}
        if request.stage is ApprovalStage.ESCALATED:
            allowed.add(request.escalation_group)
        if not allowed.intersection(decision.groups):
            raise DecisionRejected(
                f"{user} is not in an approver group for this request", RefusalCode.UNAUTHORISED
            )
        if any(same_identity(d.user, user) for d in request.decisions):
            raise DecisionRejected(f"{user} has already decided this request")
        return request

    def apply(self, decision: DecisionInput, now: datetime) -> DecisionAck:
        request = self.validate(decision, now)
        self.seen_decisions.add(decision.decision_id)
        request.decisions.append(decision)
        if decision.decision is DecisionKind.DENY:
            request.outcome = "denied"
        elif len(request.approvers) >= request.required:
            request.outcome = "approved"
        return DecisionAck(
            approval_id=request.approval_id,
            status=request.outcome or "recorded",
            approvals=len(request.approvers),
            required=request.required,
        )


def new_request(
    incident_id: str,
    action: Action,
    decision: PolicyDecision,
    tier: Tier,
    *,
    requester: str,
    now: datetime,
) -> PendingApproval:
    """A request bound to the hash of incident, action, target, parameters and policy version."""
    digest = action_hash(incident_id, action, decision.policy_version)
    return PendingApproval(
        approval_id=f"apr-{digest[:16]}",
        action=action,
        action_hash=digest,
        risk=decision.risk,
        required=max(1, decision.required_approvers),
        requester=requester,
        approver_group=tier.approver_group,
        escalation_group=tier.escalation_group,
        requested_at=now,
        deadline=now + timedelta(seconds=tier.sla_s),
        expires_at=now + timedelta(seconds=tier.sla_s + tier.escalation_wait_s),
    )


def counted_at(claimed_at: datetime | None, now: datetime) -> datetime:
    """The time a confirmed decision counts at for expiry: when the store recorded it (never
    later than now: a server clock ahead of the workflow's gains nothing), or now for histories
    whose confirmations carried no time."""
    return now if claimed_at is None else min(claimed_at, now)


async def wait_for_decision(
    request: PendingApproval,
    tier: Tier,
    notify: Callable[[ApprovalNotice], Awaitable[None]],
    confirming: Callable[[], bool] = lambda: False,
) -> None:
    """Wait under the tier's timers: a reminder, then at the deadline an escalation (the
    escalation group may decide too), then expiry: the default-safe outcome, a deny. Expiry
    waits for the confirmations in flight (`confirming`): a decision the store recorded in time
    counts even when the look-up ends after the expiry time."""
    if workflow.patched(ABSOLUTE_DEADLINES_PATCH):
        await _wait_until_deadlines(request, tier, notify)
        if request.outcome == "expired" and confirming():
            await _settle_confirmations(request, confirming)
        return
    waits = (
        (tier.reminder_after_s, ApprovalNotice.REMINDER),
        (tier.sla_s - tier.reminder_after_s, ApprovalNotice.ESCALATION),
        (tier.escalation_wait_s, None),
    )
    for wait_s, notice in waits:
        if await _decided_within(request, wait_s):
            return
        if notice is None:
            request.outcome = "expired"
            return
        if notice is ApprovalNotice.ESCALATION:
            request.stage = ApprovalStage.ESCALATED
        await notify(notice)


async def _wait_until_deadlines(
    request: PendingApproval,
    tier: Tier,
    notify: Callable[[ApprovalNotice], Awaitable[None]],
) -> None:
    """Each stage at its absolute time, fixed when the request was opened: after downtime (no
    worker, no Temporal) the overdue stages resolve at once, in order. A request already expired
    when the workflow wakes expires without paging anyone, and a reminder past the deadline is
    left to the escalation: nobody is asked for a decision that can no longer be made."""
    reminder_at = request.requested_at + timedelta(seconds=tier.reminder_after_s)
    stages = (
        (reminder_at, ApprovalNotice.REMINDER),
        (request.deadline, ApprovalNotice.ESCALATION),
        (request.expires_at, None),
    )
    for at, notice in stages:
        if await _decided_by(request, at):
            return
        now = workflow.now()
        if notice is None or now >= request.expires_at:
            request.outcome = "expired"
            return
        if notice is ApprovalNotice.ESCALATION:
            request.stage = ApprovalStage.ESCALATED
        elif now >= request.deadline:
            continue
        await notify(notice)


async def _settle_confirmations(request: PendingApproval, confirming: Callable[[], bool]) -> None:
    """Expiry reached with a decision still being confirmed: let the confirmation decide (it is
    refused if the store recorded it too late) before the request counts as expired."""
    if not workflow.patched(CONFIRMATIONS_BEFORE_EXPIRY_PATCH):
        return
    request.outcome = None
    await workflow.wait_condition(lambda: request.outcome is not None or not confirming())
    if request.outcome is None:
        request.outcome = "expired"


async def _decided_by(request: PendingApproval, at: datetime) -> bool:
    """Whether a decision arrives before the workflow time `at` (no timer once it has passed)."""
    remaining = (at - workflow.now()).total_seconds()
    if request.outcome is not None or remaining <= 0:
        return request.outcome is not None
    return await _decided_within(request, remaining)


async def _decided_within(request: PendingApproval, seconds: float) -> bool:
    try:
        await workflow.wait_condition(
            lambda: request.outcome is not None, timeout=timedelta(seconds=seconds)
        )
    except TimeoutError:
        return request.outcome is not None
    return True
