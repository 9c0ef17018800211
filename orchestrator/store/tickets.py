"""The store's record of each incident's ticket (one per incident): `Store.tickets`."""

from __future__ import annotations

from sqlmodel.ext.asyncio.session import AsyncSession

from orchestrator.store import mapping, reads
from orchestrator.store.records import TicketRecord
from orchestrator.store.tables import TicketRow
from orchestrator.store.transactions import Transactions


class Tickets:
    def __init__(self, db: Transactions) -> None:
        self._db = db

    async def for_incident(self, incident_id: str) -> TicketRecord | None:
        row = await self._db.first(reads.TICKET, incident_id=incident_id)
        return None if row is None else mapping.ticket_record(row)

    async def save(self, ticket: TicketRecord) -> TicketRecord:
        """Insert or replace the incident's ticket (one per incident)."""
        values = mapping.ticket_values(ticket)
        changes = {key: value for key, value in values.items() if key != "incident_id"}
        statement = self._db.insert(TicketRow, values).on_conflict_do_update(
            index_elements=["incident_id"], set_=changes
        )

        async def work(session: AsyncSession) -> None:
            await session.exec(statement)

        await self._db.run(work, write=True)
        return ticket
