"""The policy's decision on a proposal, in the audit log: once per activity execution.

Written by `audit.policy_decision` for a denial (and, in histories recorded before
`POLICY_AUDIT_PATCH`, for every decision), and otherwise by the activity that acts on the
decision, as the first thing it does: `approvals.request` for an action that needs humans,
`response.execute` for an allowed one. Either way the entry precedes everything that follows from
the decision. Those activities are retried for their own work (a vendor error, a lost answer), so
an attempt after the first looks for the entry its execution wrote (by workflow run and activity
id, kept in the entry's detail) before writing it: one entry per decision (I6).
"""

from __future__ import annotations

from temporalio import activity

from orchestrator.activities.errors import activity_source
from orchestrator.models import PolicyRecord
from orchestrator.store.records import AuditEvent
from orchestrator.store.repository import Store


async def audit_policy_decision(store: Store, record: PolicyRecord) -> None:
    event = await policy_event_to_write(store, record)
    if event is not None:
        await store.append_audit(event)


async def policy_event_to_write(store: Store, record: PolicyRecord) -> AuditEvent | None:
    """The decision's entry, for the caller to append first; None when an earlier attempt of
    this execution already wrote it."""
    info = activity.info()
    execution = f"{info.workflow_run_id}/{info.activity_id}"
    event = _event(record, execution)
    if info.attempt > 1:
        entries = await store.audit_entries(incident_id=record.incident_id)
        if any(e.type == event.type and e.detail.get("decided_in") == execution for e in entries):
            return None
    return event


def _event(record: PolicyRecord, execution: str) -> AuditEvent:
    decision = record.decision
    action = f"{record.action.kind.value}:{record.action.target}"
    return AuditEvent(
        type=f"policy.{decision.outcome.value}",
        actor="policy",
        incident_id=record.incident_id,
        target=action,
        outcome=decision.outcome.value,
        source=activity_source(),
        policy_decision_id=f"{decision.policy_version}:{record.incident_id}:{action}",
        detail={
            "risk": decision.risk,
            "required_approvers": decision.required_approvers,
            "factors": "; ".join(f"{f.name}={f.points}" for f in decision.factors),
            "reasons": "; ".join(decision.reasons),
            "policy_version": decision.policy_version,
            "decided_in": execution,
        },
    )
