"""The store's record of Slack: the messages Garrison posted, by what each is about
(`approval:<id>`, `incident:<id>`, `note:<approval id>:<notice>`), so a message is posted once and
later edited by its `ts`; and the interactions already received, so a replayed click is recognised.
`Store.slack`."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from orchestrator.store.columns import table_of
from orchestrator.store.records import SlackMessage
from orchestrator.store.tables import SlackInteractionRow, SlackMessageRow
from orchestrator.store.transactions import Transactions


class SlackRecords:
    def __init__(self, db: Transactions) -> None:
        self._db = db

    async def message(self, key: str) -> SlackMessage | None:
        row = await self._db.first(select(SlackMessageRow).where(SlackMessageRow.key == key))
        if row is None:
            return None
        return SlackMessage(
            key=row.key,
            channel=row.channel,
            ts=row.ts,
            thread_ts=row.thread_ts,
            payload=row.payload,
            posted_at=row.posted_at,
        )

    async def save_message(self, message: SlackMessage) -> SlackMessage:
        """Record a posted message; the first record of a key wins and is returned."""
        statement = self._db.insert(SlackMessageRow, message.model_dump()).on_conflict_do_nothing()

        async def work(session: AsyncSession) -> None:
            await session.exec(statement)

        await self._db.run(work, write=True)
        stored = await self.message(message.key)
        assert stored is not None
        return stored

    async def claim_interaction(self, key: str, at: datetime) -> bool:
        """True the first time an interaction is seen; False for a replay of it."""
        values = {"key": key, "received_at": at}

        async def work(session: AsyncSession) -> bool:
            statement = self._db.insert(SlackInteractionRow, values).on_conflict_do_nothing()
            result = await session.exec(statement.returning(table_of(SlackInteractionRow).c.key))
            return result.first() is not None

        return await self._db.run(work, write=True)
