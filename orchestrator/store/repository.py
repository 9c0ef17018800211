"""`Store`: the async repository over the store's tables, on SQLite or Postgres.

Every method is one short transaction. Writes begin `IMMEDIATE` on SQLite and every transaction is
re-run from the top on lock contention (SQLite busy, Postgres serialization failure or deadlock),
so callers never see `database is locked`. Idempotent writes use `INSERT ... ON CONFLICT DO
NOTHING` followed by a read, which is safe under any number of concurrent callers on both
databases; approval transitions are a single compare-and-set `UPDATE ... WHERE status='pending'`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Self

from sqlalchemy import case, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from orchestrator.store import audit, mapping, reads
from orchestrator.store.anchors import Anchoring, AnchorSink, after_appends
from orchestrator.store.approval_requests import ApprovalRequests
from orchestrator.store.assignments import Assignments
from orchestrator.store.columns import table_of
from orchestrator.store.console_sessions import ConsoleSessions
from orchestrator.store.database import create_engine_for
from orchestrator.store.decisions import Decisions
from orchestrator.store.errors import ConflictError, NotFoundError
from orchestrator.store.evidence import EvidenceEvents
from orchestrator.store.gauges import Gauges
from orchestrator.store.incident_filter import IncidentFilter
from orchestrator.store.intake import Intake
from orchestrator.store.intel import IntelRepository
from orchestrator.store.ledger import ActionLedger
from orchestrator.store.model_use import ModelUse
from orchestrator.store.records import (
    AlertRecord,
    AuditEvent,
    AuditRecord,
    AuditVerification,
    IncidentRecord,
)
from orchestrator.store.simulation_runs import SimulationRuns
from orchestrator.store.slack_records import SlackRecords
from orchestrator.store.tables import AlertRow, AuditRow, IncidentRow
from orchestrator.store.tickets import Tickets
from orchestrator.store.training_sessions import TrainingSessions
from orchestrator.store.transactions import Transactions, fetch_one
from tools.models import Alert, Category, IncidentStatus, Severity, Verdict

ANCHOR_EVERY = 100
# DML goes through Core tables: ORM-enabled INSERT/UPDATE may add RETURNING and lose rowcount.
_INCIDENTS = table_of(IncidentRow)


class Store(ActionLedger, ApprovalRequests):
    """Alerts, incidents, the action ledger, approvals, tickets and the audit log. The ledger's
    and the approval requests' methods are in their own modules (`ledger`, `approval_requests`),
    inherited rather than delegated so that `Store`'s methods stay where callers call them."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        anchor: AnchorSink | None = None,
        anchor_every: int = ANCHOR_EVERY,
    ) -> None:
        self._db = Transactions(engine)
        self.intake = Intake(self._db)
        self.decisions = Decisions(self._db)
        self.gauges = Gauges(self._db)
        self.simulation_runs = SimulationRuns(self._db)
        self.training_sessions = TrainingSessions(self._db)
        self.assignments = Assignments(self._db)
        self.model_use = ModelUse(self._db)
        self.intel = IntelRepository(self._db)
        self.evidence = EvidenceEvents(self._db)
        self.slack = SlackRecords(self._db)
        self.tickets = Tickets(self._db)
        self.console_sessions = ConsoleSessions(self._db)
        self._anchoring = None if anchor is None else Anchoring(anchor, anchor_every)

    @classmethod
    async def open(
        cls, url: str, *, anchor: AnchorSink | None = None, anchor_every: int = ANCHOR_EVERY
    ) -> Self:
        """Connect and create the store's tables if they are missing."""
        engine = create_engine_for(url)
        store = cls(engine, anchor=anchor, anchor_every=anchor_every)
        await store._db.create_tables()
        return store

    async def close(self) -> None:
        self.intake.close()
        await self._db.dispose()

    @property
    def engine(self) -> AsyncEngine:
        return self._db.engine

    @property
    def anchor(self) -> AnchorSink | None:
        return None if self._anchoring is None else self._anchoring.sink

    # -- alerts ---------------------------------------------------------------------------------

    async def add_alert(self, alert: Alert, incident_id: str, fingerprint: str) -> bool:
        """Store an alert; False (never an error) when its fingerprint is already stored."""
        values = mapping.alert_values(alert, incident_id, fingerprint)

        async def work(session: AsyncSession) -> bool:
            # RETURNING, not rowcount: psycopg reports -1 for an INSERT that returns rows.
            statement = self._db.insert(AlertRow, values).on_conflict_do_nothing()
            result = await session.exec(statement.returning(table_of(AlertRow).c.fingerprint))
            return result.first() is not None

        return await self._db.run(work, write=True)

    async def get_alert(self, fingerprint: str) -> AlertRecord | None:
        row = await self._db.first(select(AlertRow).where(AlertRow.fingerprint == fingerprint))
        return None if row is None else mapping.alert_record(row)

    async def alerts_for(self, incident_id: str) -> list[Alert]:
        rows = await self._db.all(reads.ALERTS_OF, incident_id=incident_id)
        return [mapping.alert_record(row).alert for row in rows]

    # -- incidents ------------------------------------------------------------------------------

    async def ensure_incident(self, incident: IncidentRecord) -> IncidentRecord:
        """Insert the incident, or return the one already stored under its id."""
        values = mapping.incident_values(incident)

        async def work(session: AsyncSession) -> IncidentRow | None:
            await session.exec(self._db.insert(IncidentRow, values).on_conflict_do_nothing())
            return await fetch_one(session, reads.INCIDENT, id=incident.id)

        row = await self._db.run(work, write=True)
        if row is None:
            raise ConflictError(f"group key {incident.group_key!r} belongs to another incident")
        return mapping.incident_record(row)

    async def get_incident(self, incident_id: str) -> IncidentRecord | None:
        row = await self._db.first(reads.INCIDENT, id=incident_id)
        return None if row is None else mapping.incident_record(row)

    async def list_incidents(
        self,
        status: IncidentStatus | None = None,
        limit: int = 100,
        *,
        where: IncidentFilter | None = None,
    ) -> list[IncidentRecord]:
        """Newest first; `where` narrows by verdict, severity, category, age and assignee."""
        query = select(IncidentRow).order_by(col(IncidentRow.opened_at).desc()).limit(limit)
        if status is not None:
            query = query.where(IncidentRow.status == status.value)
        if where is not None:
            query = where.apply(query)
        return [mapping.incident_record(row) for row in await self._db.all(query)]

    async def record_triage(
        self,
        incident_id: str,
        verdict: Verdict,
        severity: Severity,
        category: Category,
        confidence: float,
        playbook: str | None,
        knowledge_version: str | None = None,
    ) -> IncidentRecord:
        """Record the triage and the version of the knowledge it was decided under; an open
        incident becomes triaged (a closed one stays closed)."""
        status = case(
            (_INCIDENTS.c.status == IncidentStatus.OPEN.value, IncidentStatus.TRIAGED.value),
            else_=_INCIDENTS.c.status,
        )
        values = {
            "verdict": verdict.value,
            "severity": severity.value,
            "category": category.value,
            "confidence": confidence,
            "playbook": playbook,
            "knowledge_version": knowledge_version,
            "status": status,
        }
        return await self._update_incident(incident_id, values, only_open=False)

    async def set_incident_status(self, incident_id: str, status: IncidentStatus) -> IncidentRecord:
        """Move an incident that is not closed to another status (closing is `close_incident`)."""
        if status is IncidentStatus.CLOSED:
            raise ValueError("close an incident with close_incident")
        return await self._update_incident(incident_id, {"status": status.value}, only_open=True)

    async def close_incident(
        self, incident_id: str, summary: str, closed_at: datetime
    ) -> IncidentRecord:
        """Close the incident (a second close keeps the first summary) and anchor the audit head
        (a failure to anchor is logged: the close stands)."""
        values = {"status": IncidentStatus.CLOSED.value, "summary": summary, "closed_at": closed_at}
        record = await self._update_incident(incident_id, values, only_open=True)
        if self._anchoring is not None and (head := await self.audit_head()) is not None:
            await self._anchoring.write_logged(head)
        return record

    async def _update_incident(
        self, incident_id: str, values: Mapping[str, Any], *, only_open: bool
    ) -> IncidentRecord:
        statement = update(_INCIDENTS).where(_INCIDENTS.c.id == incident_id).values(**values)
        if only_open:
            statement = statement.where(_INCIDENTS.c.status != IncidentStatus.CLOSED.value)

        async def work(session: AsyncSession) -> IncidentRow | None:
            await session.exec(statement)
            return await fetch_one(session, reads.INCIDENT, id=incident_id)

        row = await self._db.run(work, write=True)
        if row is None:
            raise NotFoundError(f"incident {incident_id!r}")
        return mapping.incident_record(row)

    # -- audit ----------------------------------------------------------------------------------

    async def append_audit(self, event: AuditEvent) -> AuditRecord:
        """Append to the hash chain; every `anchor_every`-th entry is also written to the anchor."""

        async def work(connection: AsyncConnection) -> AuditRecord:
            return await audit.append(connection, event, postgres=not self._db.sqlite)

        record = await self._db.run_core(work, write=True)
        await after_appends(self._anchoring, [record])
        return record

    async def audit_entries(self, incident_id: str | None = None) -> list[AuditRecord]:
        query = select(AuditRow).order_by(col(AuditRow.seq))
        if incident_id is not None:
            query = query.where(AuditRow.incident_id == incident_id)
        return [audit.record_from_row(row) for row in await self._db.all(query)]

    async def audit_head(self) -> AuditRecord | None:
        row = await self._db.first(select(AuditRow).order_by(col(AuditRow.seq).desc()).limit(1))
        return None if row is None else audit.record_from_row(row)

    async def audit_tail(self, count: int) -> list[AuditRecord]:
        """The newest `count` entries, oldest first."""
        query = select(AuditRow).order_by(col(AuditRow.seq).desc()).limit(count)
        return [audit.record_from_row(row) for row in reversed(await self._db.all(query))]

    async def anchor_now(self) -> AuditRecord | None:
        """Write the current head to the anchor (no-op without an anchor or an empty log); raises
        `AnchorError` when the sink refuses it."""
        if self._anchoring is None:
            return None
        head = await self.audit_head()
        if head is not None:
            await self._anchoring.write(head)
        return head

    async def anchor_if_moved(self) -> AuditRecord | None:
        """The scheduled anchor: write the head when it moved since this process last anchored
        one; the head written, or None."""
        if self._anchoring is None:
            return None
        head = await self.audit_head()
        if head is None or not self._anchoring.moved(head):
            return None
        await self._anchoring.write(head)
        return head

    async def verify_audit(self, anchor: audit.AnchorSource | None = None) -> AuditVerification:
        """Walk the chain from seq 1; with anchors, every anchored head must still be there."""
        return await audit.verify(self._db, anchor)
