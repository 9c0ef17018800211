"""The workflow's side of two store-backed guards (see orchestrator/activities/guards.py).

- A decision counts only as the store recorded it (`confirmed`): a Temporal client can send the
  `decide` Update or signal with any identity and groups it likes; the store's claim, written by
  `ApprovalService` after its checks, is the only source of who decided and in which groups.
- The global isolation breaker's count (`isolations_in_window`): one store-wide slot per
  isolation requested, whatever incident or worker asks.

Both are behind patches, so workflows whose histories were recorded before them replay unchanged.
"""

from __future__ import annotations

from datetime import datetime

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from orchestrator.models import (
        ConfirmDecisionInput,
        DecisionConfirmation,
        DecisionInput,
        IncidentWorkflowInput,
        IsolationSlot,
        IsolationSlotInput,
        RefusalCode,
    )
    from orchestrator.workflows.calls import call_activity
    from orchestrator.workflows.gate import ApprovalGate, DecisionRejected
    from tools.actions import Action, ActionKind

CONFIRMED_DECISIONS_PATCH = "confirmed-decisions-v1"
BREAKER_PATCH = "isolation-breaker-v1"
DEPLOYMENT_SCOPE = "deployment"


async def confirmed(
    params: IncidentWorkflowInput, gate: ApprovalGate, decision: DecisionInput
) -> tuple[DecisionInput, datetime | None]:
    """The decision as `ApprovalService` recorded it and when it recorded it, or DecisionRejected
    (audited as forged by the activity). Decisions in histories from before the patch are taken
    as sent, with no recorded time.

    One decision can arrive twice (the Update the service gave up waiting for is delivered when a
    worker returns, beside its fallback signal): the second is refused without a second look-up."""
    if not workflow.patched(CONFIRMED_DECISIONS_PATCH):
        return decision, None
    key = decision.decision_id
    if key in gate.seen_decisions or key in gate.confirming:
        raise DecisionRejected("this decision was already received", RefusalCode.DECIDED)
    gate.confirming[key] = decision.approval_id
    try:
        answer = await call_activity(
            params.activity,
            "approvals.confirm",
            ConfirmDecisionInput(incident_id=params.incident_id, decision=decision),
            DecisionConfirmation,
        )
    finally:
        gate.confirming.pop(key, None)
    if answer.confirmed is None:
        raise DecisionRejected(
            f"forged decision refused: {answer.reason}", RefusalCode.UNAUTHORISED
        )
    return answer.confirmed, answer.claimed_at


async def isolations_in_window(params: IncidentWorkflowInput, action: Action) -> int | None:
    """How many isolations were requested within the breaker's window, this one included; None
    when the breaker is off, the action is no isolation, or the history predates the breaker."""
    breaker = params.policy.breaker
    if action.kind is not ActionKind.ISOLATE_HOST or breaker.max_isolations is None:
        return None
    if not workflow.patched(BREAKER_PATCH):
        return None
    slot = await call_activity(
        params.activity,
        "response.isolation_slot",
        IsolationSlotInput(
            incident_id=params.incident_id,
            action=action,
            scope=params.breaker_scope or DEPLOYMENT_SCOPE,
            window_s=breaker.window_s,
        ),
        IsolationSlot,
    )
    return slot.position
