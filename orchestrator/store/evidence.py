"""The telemetry records the agents' claims rest on, kept per incident (`evidence_events`).

The activity that ran an agent keeps, beside its result, the records it read around each record
a claim refers to (`orchestrator/activities/evidence.py`). The EDR is a live system: asking it
again when a page opens would spend the vendor's rate budget and could answer differently, so
the console shows only what is kept here. A record is kept once per incident (a retried activity
or a second agent reading it again adds nothing)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from datetime import datetime, timedelta

from pydantic import AwareDatetime, BaseModel, ConfigDict
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel import col, select

from orchestrator.store.columns import table_of
from orchestrator.store.tables import EvidenceEventRow
from orchestrator.store.transactions import Transactions

MAX_SHOWN = 500  # one view's rows: a window of one host
_EVENTS = table_of(EvidenceEventRow)
_KEEP_SQLITE = sqlite.insert(_EVENTS).on_conflict_do_nothing().returning(_EVENTS.c.key)
_KEEP_POSTGRES = postgresql.insert(_EVENTS).on_conflict_do_nothing().returning(_EVENTS.c.key)


class KeptEvent(BaseModel):
    """One kept record: where and when, its kind, its process, and its fields as read."""

    model_config = ConfigDict(frozen=True)

    host: str
    time: AwareDatetime
    kind: str
    pid: int | None = None
    record_id: str | None = None
    fields: tuple[tuple[str, str], ...] = ()  # (name, value) in the record's order, set ones

    @property
    def digest(self) -> str:
        text = json.dumps([self.host, self.kind, self.time.isoformat(), self.fields])
        return hashlib.sha256(text.encode()).hexdigest()[:32]


class EvidenceEvents:
    def __init__(self, db: Transactions) -> None:
        self._db = db

    async def keep(self, incident_id: str, events: Sequence[KeptEvent]) -> int:
        """Keep `events` for the incident; how many were not kept before."""

        rows = [
            {
                "key": f"{incident_id}:{event.digest}",
                "incident_id": incident_id,
                "host": event.host.lower(),
                "time": event.time,
                "kind": event.kind,
                "pid": event.pid,
                "record_id": event.record_id,
                "record": json.dumps(event.fields),
            }
            for event in events
        ]
        statement = _KEEP_SQLITE if self._db.sqlite else _KEEP_POSTGRES

        async def work(connection: AsyncConnection) -> int:
            # One executemany of a statement built once: SQLAlchemy batches the rows into
            # multi-row INSERTs itself ("insertmanyvalues"), RETURNING the keys it added.
            return len((await connection.execute(statement, rows)).all())

        return await self._db.run_core(work, write=True) if events else 0

    async def around(
        self, incident_id: str, host: str, at: datetime, window: timedelta
    ) -> list[KeptEvent]:
        """The incident's kept records of `host` within `window` of `at`, oldest first."""
        query = (
            select(EvidenceEventRow)
            .where(EvidenceEventRow.incident_id == incident_id)
            .where(EvidenceEventRow.host == host.lower())
            .where(col(EvidenceEventRow.time) >= at - window)
            .where(col(EvidenceEventRow.time) <= at + window)
            .order_by(col(EvidenceEventRow.time), col(EvidenceEventRow.id))
            .limit(MAX_SHOWN)
        )
        return [_event(row) for row in await self._db.all(query)]

    async def count(self, incident_id: str) -> int:
        query = select(EvidenceEventRow).where(EvidenceEventRow.incident_id == incident_id)
        return len(await self._db.all(query))


def _event(row: EvidenceEventRow) -> KeptEvent:
    fields = tuple((str(k), str(v)) for k, v in json.loads(row.record))
    return KeptEvent(
        host=row.host,
        time=row.time,
        kind=row.kind,
        pid=row.pid,
        record_id=row.record_id,
        fields=fields,
    )
