"""Small factories for the store tests (a module, not fixtures: each test builds its own data)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from orchestrator.store import (
    ActionRecord,
    ApprovalRecord,
    AuditEvent,
    IncidentRecord,
)
from tools.actions import Action, IsolateHost, action_hash, business_key
from tools.models import Alert, AlertEntities, RuleRef, Severity

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def make_alert(uid: str = "alert-1", host: str = "WS01") -> Alert:
    return Alert(
        uid=uid,
        time=T0,
        title="LSASS memory read by unsigned process",
        severity=Severity.HIGH,
        product="Sysmon",
        rule=RuleRef(uid="rule-1", name="LSASS access"),
        entities=AlertEntities(host=host, user="CORP\\alice"),
    )


def make_incident(incident_id: str = "inc-1", group_key: str | None = None) -> IncidentRecord:
    return IncidentRecord(
        id=incident_id,
        group_key=group_key or f"rule-1:{incident_id}",
        title="Suspicious LSASS access on WS01",
        opened_at=T0,
    )


def make_action_record(incident_id: str = "inc-1", action: Action | None = None) -> ActionRecord:
    action = action or IsolateHost(target="WS01")
    return ActionRecord(
        business_key=business_key(incident_id, action),
        incident_id=incident_id,
        action=action,
        risk=70,
        decision="needs_approval",
        approval_id="appr-1",
        created_at=T0,
    )


def make_approval(approval_id: str = "appr-1", incident_id: str = "inc-1") -> ApprovalRecord:
    action = IsolateHost(target="WS01")
    return ApprovalRecord(
        id=approval_id,
        incident_id=incident_id,
        action=action,
        action_hash=action_hash(incident_id, action, "policy-v1"),
        risk=70,
        risk_factors={"asset_criticality": 30, "action_kind": 40},
        required_approvers=1,
        approver_group="soc-oncall",
        escalation_group="soc-leads",
        requester="garrison-agent",
        policy_version="policy-v1",
        created_at=T0,
        deadline=T0 + timedelta(minutes=30),
    )


def make_event(
    n: int = 0, incident_id: str | None = "inc-1", actor: str = "worker-a"
) -> AuditEvent:
    return AuditEvent(
        type="remediation.isolate.succeeded",
        actor=actor,
        outcome="succeeded",
        source=f"incident-workflow/{incident_id}/activity-{n}",
        incident_id=incident_id,
        target="WS01",
        approval_ref="appr-1",
        policy_decision_id=f"pd-{n}",
        detail={"n": n, "risk": 70.5, "already_in_state": False, "note": "ok", "ticket": None},
    )
