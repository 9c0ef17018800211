"""Conversions between ORM rows (inside the store) and records (everywhere else)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from pydantic import TypeAdapter

from orchestrator.store.records import (
    ActionRecord,
    AlertRecord,
    ApprovalDecision,
    ApprovalRecord,
    IncidentRecord,
    TicketRecord,
)
from orchestrator.store.tables import ActionRow, AlertRow, ApprovalRow, IncidentRow, TicketRow
from tools.actions import ACTION_ADAPTER, Action
from tools.models import Alert

_DECISIONS: TypeAdapter[list[ApprovalDecision]] = TypeAdapter(list[ApprovalDecision])


def action_json(action: Action) -> str:
    return ACTION_ADAPTER.dump_json(action).decode()


def decisions_json(decisions: list[ApprovalDecision]) -> str:
    return _DECISIONS.dump_json(decisions).decode()


def aware(value: datetime) -> datetime:
    """Alert times come from outside; a naive one is taken to be UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def alert_values(alert: Alert, incident_id: str, fingerprint: str) -> dict[str, Any]:
    return {
        "uid": alert.uid,
        "fingerprint": fingerprint,
        "incident_id": incident_id,
        "time": aware(alert.time),
        "title": alert.title,
        "severity": alert.severity.value,
        "raw": alert.model_dump_json(),
    }


def alert_record(row: AlertRow) -> AlertRecord:
    return AlertRecord(
        fingerprint=row.fingerprint,
        incident_id=row.incident_id,
        alert=Alert.model_validate_json(row.raw),
    )


def incident_values(record: IncidentRecord) -> dict[str, Any]:
    return record.model_dump(mode="python")


def incident_record(row: IncidentRow) -> IncidentRecord:
    return IncidentRecord.model_validate(row.model_dump())


def action_values(record: ActionRecord) -> dict[str, Any]:
    return {
        "business_key": record.business_key,
        "incident_id": record.incident_id,
        "kind": record.action.kind.value,
        "target": record.action.target,
        "action": action_json(record.action),
        "risk": record.risk,
        "decision": record.decision,
        "approval_id": record.approval_id,
        "status": record.status.value,
        "outcome": record.outcome,
        "already_in_state": record.already_in_state,
        "verified": record.verified,
        "inverse": None if record.inverse is None else action_json(record.inverse),
        "created_at": record.created_at,
        "completed_at": record.completed_at,
        "attempts": record.attempts,
    }


def action_record(row: ActionRow) -> ActionRecord:
    return ActionRecord(
        business_key=row.business_key,
        incident_id=row.incident_id,
        action=ACTION_ADAPTER.validate_json(row.action),
        risk=row.risk,
        decision=row.decision,
        approval_id=row.approval_id,
        status=row.status,  # type: ignore[arg-type]  # validated into ActionStatus
        outcome=row.outcome,
        already_in_state=row.already_in_state,
        verified=row.verified,
        inverse=None if row.inverse is None else ACTION_ADAPTER.validate_json(row.inverse),
        created_at=row.created_at,
        completed_at=row.completed_at,
        attempts=row.attempts,
    )


def approval_values(record: ApprovalRecord) -> dict[str, Any]:
    values = record.model_dump(mode="python", exclude={"action", "risk_factors", "decisions"})
    values["status"] = record.status.value
    values["action"] = action_json(record.action)
    values["risk_factors"] = json.dumps(record.risk_factors, sort_keys=True)
    values["decisions"] = decisions_json(record.decisions)
    return values


def approval_record(row: ApprovalRow) -> ApprovalRecord:
    values = row.model_dump(exclude={"action", "risk_factors", "decisions"})
    return ApprovalRecord(
        **values,
        action=ACTION_ADAPTER.validate_json(row.action),
        risk_factors=json.loads(row.risk_factors),
        decisions=_DECISIONS.validate_json(row.decisions),
    )


def ticket_values(record: TicketRecord) -> dict[str, Any]:
    values = record.model_dump(mode="python")
    values["status"] = record.status.value
    return values


def ticket_record(row: TicketRow) -> TicketRecord:
    return TicketRecord.model_validate(row.model_dump(exclude={"id"}))
