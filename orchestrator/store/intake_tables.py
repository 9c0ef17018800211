"""The tables of ingestion: how each stored alert arrived (the outbox of workflow signals), the
grouping state (`incident_groups`, `rule_hosts`), dead letters and signed-webhook deliveries."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Text
from sqlmodel import Field, SQLModel

from orchestrator.store.columns import at_column, json_column


class IntakeRow(SQLModel, table=True):
    """How a stored alert arrived (sender, shape, the original record verbatim) and whether its
    incident's workflow has been signalled: ingestion's outbox. `signalled_at` is null until the
    signal-with-start succeeded; the dispatcher and its sweeper send what is still null."""

    __tablename__: str = "alert_intake"  # type: ignore[misc]

    fingerprint: str = Field(primary_key=True)
    incident_id: str = Field(index=True)
    alert_uid: str
    source: str
    shape: str
    scope: str
    original: str = json_column()
    received_at: datetime = at_column()
    signalled_at: datetime | None = at_column(nullable=True, index=True)


class IncidentGroupRow(SQLModel, table=True):
    """Ingestion's grouping state: which incident an entity (`host:prd01`, `user:corp\\ann`,
    `corr:<sender's incident>`, `storm:<rule>`) belongs to within a scope, and when it was last
    seen, so a later alert of the same group joins the open incident."""

    __tablename__: str = "incident_groups"  # type: ignore[misc]

    scope: str = Field(primary_key=True)
    key: str = Field(primary_key=True)
    incident_id: str = Field(index=True)
    last_seen: datetime = at_column()


class RuleHostRow(SQLModel, table=True):
    """Which hosts each rule alerted on lately: what a storm is counted from."""

    __tablename__: str = "rule_hosts"  # type: ignore[misc]

    scope: str = Field(primary_key=True)
    rule: str = Field(primary_key=True)
    host: str = Field(primary_key=True)
    last_seen: datetime = at_column(index=True)


class DeadLetterRow(SQLModel, table=True):
    """What ingestion could not accept, kept with the reason: nothing is lost."""

    __tablename__: str = "dead_letters"  # type: ignore[misc]

    id: int | None = Field(default=None, primary_key=True)
    received_at: datetime = at_column(index=True)
    channel: str  # api, webhook:<source>, poll:<source>
    shape: str | None = None
    reason: str = Field(sa_type=Text)
    body: str = Field(sa_type=Text)  # the record (or the raw body) as received
    status: str = Field(index=True)  # open | accepted
    attempts: int = 0
    alert_id: str | None = None


class WebhookDeliveryRow(SQLModel, table=True):
    """Signed webhook deliveries already received: a replayed signature is refused."""

    __tablename__: str = "webhook_deliveries"  # type: ignore[misc]

    key: str = Field(primary_key=True)
    received_at: datetime = at_column(index=True)
