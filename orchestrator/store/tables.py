"""SQLModel tables of the store: alerts, incidents, the action ledger, approvals, tickets, audit.

Rows stay inside `orchestrator.store`; the rest of Garrison sees the pydantic records of
`records.py`. JSON payloads are stored as text exactly as written (not JSONB), so what was hashed
or approved reads back byte-for-byte. Every timestamp is stored in UTC and read back tz-aware.
There are deliberately no foreign keys to `incidents`: ingestion stores an alert before its
incident workflow exists, and audit records outlive and precede incidents. Ingestion's own tables
are in `intake_tables.py`, the column types in `columns.py`; `STORE_TABLES` lists them all.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Table, Text
from sqlmodel import Field, SQLModel

from orchestrator.store.columns import at_column, json_column, table_of
from orchestrator.store.intake_tables import (
    DeadLetterRow,
    IncidentGroupRow,
    IntakeRow,
    RuleHostRow,
    WebhookDeliveryRow,
)


class AlertRow(SQLModel, table=True):
    __tablename__: str = "alerts"  # type: ignore[misc]

    id: int | None = Field(default=None, primary_key=True)
    uid: str = Field(index=True)  # unique per source only; the fingerprint is the identity
    fingerprint: str = Field(unique=True)
    incident_id: str = Field(index=True)
    time: datetime = at_column()
    title: str
    severity: str
    raw: str = json_column()


class IncidentRow(SQLModel, table=True):
    __tablename__: str = "incidents"  # type: ignore[misc]

    id: str = Field(primary_key=True)
    group_key: str = Field(unique=True)
    title: str
    status: str = Field(index=True)
    verdict: str | None = None
    severity: str | None = None
    category: str | None = None
    confidence: float | None = None
    playbook: str | None = None
    knowledge_version: str | None = None  # the agents' knowledge the triage decided under
    opened_at: datetime = at_column(index=True)
    closed_at: datetime | None = at_column(nullable=True)
    summary: str | None = Field(default=None, sa_type=Text)


class ActionRow(SQLModel, table=True):
    """The action ledger: one row per side effect, keyed `<incident>:<kind>:<target>`."""

    __tablename__: str = "actions"  # type: ignore[misc]

    id: int | None = Field(default=None, primary_key=True)
    business_key: str = Field(unique=True)
    incident_id: str = Field(index=True)
    kind: str
    target: str
    action: str = json_column()
    risk: int
    decision: str
    approval_id: str | None = None
    status: str
    outcome: str = Field(default="", sa_type=Text)
    already_in_state: bool = False
    verified: bool = False
    inverse: str | None = json_column(nullable=True)
    created_at: datetime = at_column()
    completed_at: datetime | None = at_column(nullable=True)
    attempts: int = Field(default=0, sa_column_kwargs={"server_default": "0"})


class ApprovalRow(SQLModel, table=True):
    __tablename__: str = "approvals"  # type: ignore[misc]

    id: str = Field(primary_key=True)
    incident_id: str = Field(index=True)
    action: str = json_column()
    action_hash: str
    risk: int
    risk_factors: str = json_column()
    required_approvers: int
    approver_group: str
    escalation_group: str | None = None
    requester: str
    policy_version: str
    status: str = Field(index=True)
    decisions: str = json_column()
    created_at: datetime = at_column()
    deadline: datetime = at_column()
    decided_at: datetime | None = at_column(nullable=True)


class TicketRow(SQLModel, table=True):
    __tablename__: str = "tickets"  # type: ignore[misc]

    id: int | None = Field(default=None, primary_key=True)
    incident_id: str = Field(unique=True)
    ticket_id: str
    status: str
    comments: int = 0
    opened_at: datetime = at_column()
    closed_at: datetime | None = at_column(nullable=True)


class AuditRow(SQLModel, table=True):
    """The hash-chained audit log; `seq` is the chain position (1, 2, 3, ...)."""

    __tablename__: str = "audit_log"  # type: ignore[misc]

    seq: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    at: datetime = at_column()
    type: str = Field(index=True)
    actor: str
    incident_id: str | None = Field(default=None, index=True)
    target: str | None = None
    outcome: str
    source: str
    approval_ref: str | None = None
    policy_decision_id: str | None = None
    detail: str = json_column()
    prev_hash: str
    hash: str


class SlackMessageRow(SQLModel, table=True):
    """A message Garrison posted to Slack, by what it is about (`approval:<id>`,
    `incident:<id>`, `note:<approval id>:<notice>`): posted once, later edited by its `ts`."""

    __tablename__: str = "slack_messages"  # type: ignore[misc]

    key: str = Field(primary_key=True)
    channel: str
    ts: str
    thread_ts: str | None = None
    payload: str = json_column()  # what the message was rendered from, to re-render it on edits
    posted_at: datetime = at_column()


class SlackInteractionRow(SQLModel, table=True):
    """Slack interactions already received: a replayed click is recognised and ignored."""

    __tablename__: str = "slack_interactions"  # type: ignore[misc]

    key: str = Field(primary_key=True)
    received_at: datetime = at_column(index=True)


class DecisionClaimRow(SQLModel, table=True):
    """A human decision as `ApprovalService` checked it: who (canonical identity), the groups the
    server resolved, what, on which channel, bound to the approval and its action hash. The
    workflow counts a decision only when it finds its claim here (no claim: forged)."""

    __tablename__: str = "decision_claims"  # type: ignore[misc]

    decision_id: str = Field(primary_key=True)
    approval_id: str = Field(index=True)
    incident_id: str
    action_hash: str
    user: str
    groups: str = json_column()
    decision: str
    channel: str
    at: datetime = at_column()


class IsolationSlotRow(SQLModel, table=True):
    """One isolation requested, deployment-wide, for the global isolation breaker: one row per
    business key (a retried request takes the same slot), counted over a sliding window."""

    __tablename__: str = "isolation_slots"  # type: ignore[misc]

    id: int | None = Field(default=None, primary_key=True)  # arrival order
    business_key: str = Field(unique=True)
    scope: str = Field(index=True)
    at: datetime = at_column(index=True)


class SimulationRunRow(SQLModel, table=True):
    """One `garrison simulate` run's scorecard (`garrison.scorecard/1` JSON, as the run wrote it),
    with its headline metrics in columns for the console's list of runs."""

    __tablename__: str = "simulation_runs"  # type: ignore[misc]

    id: str = Field(primary_key=True)  # the run's id: its incidents are `sim-<id>--<recorded>`
    finished_at: datetime = at_column(index=True)
    label: str = Field(sa_type=Text)  # the paths simulated, the analyst and backends options
    incidents: int
    verdict_accuracy: float
    containment_precision: float
    containment_recall: float
    over_response: int
    unapproved_risky_actions: int
    report: str = json_column()


class AssignmentRow(SQLModel, table=True):
    """Who an incident is assigned to (at most one person; no row: unassigned). A table of its
    own, not a column of `incidents`: `create_all` creates missing tables, never columns."""

    __tablename__: str = "incident_assignments"  # type: ignore[misc]

    incident_id: str = Field(primary_key=True)
    assignee: str = Field(index=True)  # a canonical identity of the approver directory
    assigned_by: str
    assigned_at: datetime = at_column()


class ModelUsageRow(SQLModel, table=True):
    """One incident's model use by one role (triage, investigation, remediation, summaries):
    the ledger the seam keeps, written after every agent activity, so that usage and budgets
    survive a worker restart and the scorecard, the console and `/metrics` read the same."""

    __tablename__: str = "model_usage"  # type: ignore[misc]

    incident_id: str = Field(primary_key=True)
    role: str = Field(primary_key=True)
    model: str
    calls: int = 0
    answered: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    latency_s: float = 0.0
    budget_exceeded: bool = False
    disagreements: str = json_column()  # JSON list of lines
    updated_at: datetime = at_column()


class NarrativeRow(SQLModel, table=True):
    """The summaries role's latest narrative of an incident and its per-action justifications
    (model-generated: shown labelled, beside the deterministic facts, escaped per channel)."""

    __tablename__: str = "incident_narratives"  # type: ignore[misc]

    incident_id: str = Field(primary_key=True)
    model: str
    text: str = Field(sa_type=Text)
    justifications: str = json_column()  # JSON list of {kind, target, text}
    written_at: datetime = at_column()


class IntelObjectRow(SQLModel, table=True):
    """One version of a STIX object in a TAXII collection (`orchestrator/store/intel.py`):
    `seq` is the arrival order (TAXII's `next`), `key` `<collection>|<id>|<version>` makes a
    repeated publication add nothing."""

    __tablename__: str = "intel_objects"  # type: ignore[misc]

    seq: int | None = Field(default=None, primary_key=True)
    key: str = Field(unique=True)
    collection: str = Field(index=True)
    stix_id: str = Field(index=True)
    version: str  # the object's `modified`, else its `created`, else when it was added
    type: str
    added_at: datetime = at_column(index=True)
    body: str = json_column()


class SharedIndicatorRow(SQLModel, table=True):
    """An indicator a sharing partner published, as `garrison intel pull` read it, keyed
    `<source>|<kind>|<value>`: the feed's latest word on that value."""

    __tablename__: str = "shared_indicators"  # type: ignore[misc]

    key: str = Field(primary_key=True)
    kind: str
    value: str = Field(index=True)
    source: str
    verdict: str
    confidence: int
    label: str = Field(default="", sa_type=Text)
    ref: str = ""
    valid_until: datetime | None = at_column(nullable=True)
    updated_at: datetime = at_column()


class IntelFeedRow(SQLModel, table=True):
    """How far each pulled feed was read (a TAXII collection's last `added`, a MISP feed's event
    timestamps), as JSON text."""

    __tablename__: str = "intel_feeds"  # type: ignore[misc]

    source: str = Field(primary_key=True)
    cursor: str = json_column()
    updated_at: datetime = at_column()


class EvidenceEventRow(SQLModel, table=True):
    """A telemetry record an agent read and a claim of its rests on, kept per incident by the
    activity that read it (`orchestrator/store/evidence.py`): the console shows these, it never
    asks the EDR again. `host` is the asset id the read named, lowercased."""

    __tablename__: str = "evidence_events"  # type: ignore[misc]

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(unique=True)  # `<incident>:<digest of kind and record>`: kept once
    incident_id: str = Field(index=True)
    host: str
    time: datetime = at_column()
    kind: str
    pid: int | None = None
    record_id: str | None = None
    record: str = json_column()  # the record as read, JSON


class ConsoleSessionRow(SQLModel, table=True):
    """A console session, shared by every server replica on the database: the SHA-256 of its
    id (the cookie's value, never stored), its CSRF token, who signed in, and its clock."""

    __tablename__: str = "console_sessions"  # type: ignore[misc]

    id_hash: str = Field(primary_key=True)
    csrf: str
    user: str | None = None
    started: datetime = at_column()
    seen: datetime = at_column(index=True)
    flash: str = Field(default="[]", sa_type=Text)  # messages shown once, JSON


# Created by `Store.open`; other packages' SQLModel tables are not the store's to create.
class TrainingSessionRow(SQLModel, table=True):
    """One `garrison train` session: the trainee, the headline scores in columns (the team's
    progress over time), and the whole session (per-incident scores and debriefs) as JSON."""

    __tablename__: str = "training_sessions"  # type: ignore[misc]

    id: str = Field(primary_key=True)
    analyst: str = Field(index=True)
    started_at: datetime = at_column()
    finished_at: datetime = at_column(index=True)
    incidents: int
    decisions: int
    accuracy: float
    over_response: int
    missed: int
    containment_recall: float
    agents_recall: float
    median_think_s: float | None = None
    report: str = json_column()


STORE_TABLES: tuple[Table, ...] = tuple(
    table_of(model)
    for model in (
        AlertRow,
        IncidentRow,
        ActionRow,
        ApprovalRow,
        TicketRow,
        AuditRow,
        SlackMessageRow,
        SlackInteractionRow,
        IntakeRow,
        IncidentGroupRow,
        RuleHostRow,
        DeadLetterRow,
        WebhookDeliveryRow,
        DecisionClaimRow,
        IsolationSlotRow,
        SimulationRunRow,
        AssignmentRow,
        TrainingSessionRow,
        ModelUsageRow,
        NarrativeRow,
        IntelObjectRow,
        SharedIndicatorRow,
        IntelFeedRow,
        EvidenceEventRow,
        ConsoleSessionRow,
    )
)
