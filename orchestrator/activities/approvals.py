"""Approval activities: persist a request, send reminders and escalations, record the outcome.

The workflow owns the decision; these keep the store (a compare-and-set state machine), the
audit log and the humans' channel in step with it.
"""

from __future__ import annotations

from temporalio import activity

from orchestrator.activities.errors import activity_source
from orchestrator.activities.policy_audit import policy_event_to_write
from orchestrator.approvals.notifier import ApprovalNotifier
from orchestrator.models import (
    ApprovalFinalInput,
    ApprovalNoticeInput,
    ApprovalRequestInput,
    HumanNotice,
    ModelNote,
)
from orchestrator.store.records import (
    ApprovalDecision,
    ApprovalRecord,
    ApprovalStatus,
    AuditDetailValue,
    AuditEvent,
)
from orchestrator.store.repository import Store


class ApprovalActivities:
    def __init__(self, store: Store, notifier: ApprovalNotifier) -> None:
        self.store = store
        self.notifier = notifier

    @activity.defn(name="approvals.request")
    async def request(self, request: ApprovalRequestInput) -> None:
        """Store the request with its audit entries, in one transaction: first the policy's
        decision that humans must decide (when this activity carries it), then the request."""
        events: list[AuditEvent] = []
        if request.policy is not None:
            policy_event = await policy_event_to_write(self.store, request.policy)
            if policy_event is not None:
                events.append(policy_event)
        # What the request was made with, for the console: the agents' rationale and the telemetry
        # it rests on (attacker-influenced text, kept as data and escaped wherever shown).
        proposal: dict[str, AuditDetailValue] = {
            "rationale": request.rationale[:4_000],
            "evidence": "\n".join(request.evidence)[:8_000],
            "rationale_from_model": request.rationale_from_model,
        }
        events.append(
            _event(
                "approval.requested",
                request.incident_id,
                request.approval_id,
                "pending",
                detail=proposal,
            )
        )
        decision = request.decision
        await self.store.create_approval(
            ApprovalRecord(
                id=request.approval_id,
                incident_id=request.incident_id,
                action=request.action,
                action_hash=request.action_hash,
                risk=decision.risk,
                risk_factors={f.name: f.points for f in decision.factors},
                required_approvers=max(1, decision.required_approvers),
                approver_group=request.approver_group,
                escalation_group=request.escalation_group,
                requester=request.requester,
                policy_version=decision.policy_version,
                status=ApprovalStatus.PENDING,
                decisions=[],
                created_at=request.requested_at,
                deadline=request.deadline,
            ),
            events,
        )
        if not request.via_outbox:
            await self.notifier.requested(await self._with_model_note(request))

    @activity.defn(name="approvals.notify")
    async def notify(self, notice: ApprovalNoticeInput) -> None:
        await self.store.append_audit(
            _event(
                f"approval.{notice.notice.value}", notice.incident_id, notice.approval_id, "sent"
            )
        )
        if not notice.via_outbox:
            await self.notifier.notice(notice)

    @activity.defn(name="approvals.finalize")
    async def finalize(self, final: ApprovalFinalInput) -> None:
        existing = await self.store.get_approval(final.approval_id)
        recorded = {(d.user, d.decision) for d in existing.decisions} if existing else set()
        for decision in final.decisions:
            if (decision.user, decision.decision.value) in recorded:
                continue
            await self.store.add_approval_decision(
                final.approval_id,
                ApprovalDecision(
                    user=decision.user,
                    decision=decision.decision.value,
                    channel=decision.channel,
                    at=final.at,
                ),
            )
            await self.store.append_audit(
                _event(
                    f"approval.decision.{decision.decision.value}",
                    final.incident_id,
                    final.approval_id,
                    decision.decision.value,
                    actor=decision.user,
                    channel=decision.channel,
                )
            )
        won = await self.store.transition_approval(
            final.approval_id, ApprovalStatus(final.status), decided_at=final.at
        )
        if won:
            await self.store.append_audit(
                _event(
                    f"approval.{final.status}", final.incident_id, final.approval_id, final.status
                )
            )
            if not final.via_outbox:
                await self.notifier.finalized(final)

    @activity.defn(name="approvals.announce")
    async def announce(self, message: HumanNotice) -> None:
        """Deliver one message of the workflow's outbox; retried until delivered, so the
        notifier must make a retried delivery exactly-once."""
        if message.request is not None:
            await self.notifier.requested(await self._with_model_note(message.request))
        elif message.notice is not None:
            await self.notifier.notice(message.notice)
        elif message.final is not None:
            await self.notifier.finalized(message.final)
        elif message.ticketing is not None:
            await self.notifier.ticketing(message.ticketing)

    async def _with_model_note(self, request: ApprovalRequestInput) -> ApprovalRequestInput:
        """The request with the summaries model's narrative and this action's justification,
        when the store has them: the card shows them labelled, beside its facts."""
        record = await self.store.model_use.narrative_of(request.incident_id)
        if record is None:
            return request
        note = ModelNote(
            model=record.model,
            narrative=record.text,
            justification=record.justification(request.action.kind.value, request.action.target),
        )
        return request.model_copy(update={"model_note": note})


def _event(
    kind: str,
    incident_id: str,
    approval_id: str,
    outcome: str,
    *,
    actor: str = "garrison-worker",
    channel: str | None = None,
    detail: dict[str, AuditDetailValue] | None = None,
) -> AuditEvent:
    """An audit entry of the approval `approval_id`, from the running activity."""
    extra = {"channel": channel} if channel else {}
    return AuditEvent(
        type=kind,
        actor=actor,
        incident_id=incident_id,
        target=approval_id,
        outcome=outcome,
        source=activity_source(),
        approval_ref=approval_id,
        detail=extra | (detail or {}),
    )
