"""Threat intelligence in the store: the TAXII collections' STIX objects (`intel_objects`: what
this Garrison publishes and what partners POST to it), the indicators pulled from other
organisations' collections and MISP feeds (`shared_indicators`, which triage reads through
`SharedThreatIntel`), and how far each feed was read (`intel_feeds`).

Objects are kept per version (`modified`, normalised to microseconds so that versions compare as
text) in arrival order: the `seq` of the last object of a page is the TAXII `next` of the page
after it, so a page never skips or repeats an object however many arrive between two reads.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import and_, exists
from sqlalchemy.orm import aliased
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from orchestrator.store.columns import table_of
from orchestrator.store.tables import IntelFeedRow, IntelObjectRow, SharedIndicatorRow
from orchestrator.store.transactions import Transactions
from tools.intel.base import SharedIndicator
from tools.models import Indicator
from tools.results import ReputationVerdict

_OBJECTS = table_of(IntelObjectRow)
_INDICATORS = table_of(SharedIndicatorRow)
_FEEDS = table_of(IntelFeedRow)
MAX_PAGE = 1_000


class VersionMatch(StrEnum):
    LAST = "last"
    FIRST = "first"
    ALL = "all"


@dataclass(frozen=True)
class ObjectFilter:
    added_after: datetime | None = None
    after_seq: int = 0  # TAXII `next`
    ids: tuple[str, ...] = ()
    types: tuple[str, ...] = ()
    version: VersionMatch = VersionMatch.LAST
    limit: int = 100


@dataclass(frozen=True)
class StoredObject:
    seq: int
    stix_id: str
    version: str
    added_at: datetime
    body: dict[str, Any]


@dataclass(frozen=True)
class Page:
    objects: list[StoredObject]
    more: bool


def stix_version(body: dict[str, Any], added_at: datetime) -> str:
    """An object's version as comparable text: `modified`, else `created`, else when added."""
    raw = body.get("modified") or body.get("created")
    when = added_at
    if isinstance(raw, str):
        with contextlib.suppress(ValueError):
            when = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class IntelRepository:
    def __init__(self, db: Transactions) -> None:
        self._db = db

    # -- TAXII collections ----------------------------------------------------------------------

    async def add_objects(
        self, collection: str, objects: list[dict[str, Any]], at: datetime | None = None
    ) -> list[bool]:
        """Keep each object's version in `collection`; per object, whether it was new."""
        added_at = at or datetime.now(UTC)

        async def work(session: AsyncSession) -> list[bool]:
            out = []
            for body in objects:
                version = stix_version(body, added_at)
                values = {
                    "key": f"{collection}|{body['id']}|{version}",
                    "collection": collection,
                    "stix_id": body["id"],
                    "version": version,
                    "type": body["type"],
                    "added_at": added_at,
                    "body": json.dumps(body, sort_keys=True),
                }
                statement = self._db.insert(IntelObjectRow, values).on_conflict_do_nothing()
                result = await session.exec(statement.returning(_OBJECTS.c.seq))
                out.append(result.first() is not None)
            return out

        return await self._db.run(work, write=True)

    async def objects(self, collection: str, where: ObjectFilter) -> Page:
        query = select(IntelObjectRow).where(
            IntelObjectRow.collection == collection,
            col(IntelObjectRow.seq) > where.after_seq,
        )
        if where.added_after is not None:
            query = query.where(col(IntelObjectRow.added_at) > where.added_after)
        if where.ids:
            query = query.where(col(IntelObjectRow.stix_id).in_(where.ids))
        if where.types:
            query = query.where(col(IntelObjectRow.type).in_(where.types))
        if where.version is not VersionMatch.ALL:
            other = aliased(IntelObjectRow)
            mine = col(IntelObjectRow.version)
            newer = (
                col(other.version) > mine
                if where.version is VersionMatch.LAST
                else col(other.version) < mine
            )
            query = query.where(
                ~exists().where(
                    and_(
                        col(other.collection) == col(IntelObjectRow.collection),
                        col(other.stix_id) == col(IntelObjectRow.stix_id),
                        newer,
                    )
                )
            )
        limit = max(1, min(where.limit, MAX_PAGE))
        rows = await self._db.all(query.order_by(col(IntelObjectRow.seq)).limit(limit + 1))
        found = [
            StoredObject(
                seq=r.seq or 0,
                stix_id=r.stix_id,
                version=r.version,
                added_at=r.added_at,
                body=json.loads(r.body),
            )
            for r in rows[:limit]
        ]
        return Page(found, more=len(rows) > limit)

    # -- indicators shared by partners ----------------------------------------------------------

    async def keep_indicators(self, indicators: list[SharedIndicator]) -> int:
        """Insert or refresh these indicators (a feed's latest word replaces its earlier one)."""
        now = datetime.now(UTC)

        async def work(session: AsyncSession) -> int:
            for s in indicators:
                values = {
                    "key": f"{s.source}|{s.kind.value}|{s.value.lower()}",
                    "kind": s.kind.value,
                    "value": s.value.lower(),
                    "source": s.source,
                    "verdict": s.verdict.value,
                    "confidence": s.confidence,
                    "label": s.label,
                    "ref": s.ref,
                    "valid_until": s.valid_until,
                    "updated_at": now,
                }
                update = {k: v for k, v in values.items() if k != "key"}
                statement = self._db.insert(SharedIndicatorRow, values).on_conflict_do_update(
                    index_elements=[_INDICATORS.c.key], set_=update
                )
                await session.exec(statement)
            return len(indicators)

        return await self._db.run(work, write=True)

    async def shared(self, indicator: Indicator) -> list[SharedIndicator]:
        """Implements `SharedIndicatorSource`: what partners shared about this value, valid now."""
        now = datetime.now(UTC)
        query = select(SharedIndicatorRow).where(
            SharedIndicatorRow.kind == indicator.kind.value,
            SharedIndicatorRow.value == indicator.value.strip().lower(),
        )
        rows = await self._db.all(query)
        return [
            SharedIndicator(
                kind=indicator.kind,
                value=r.value,
                source=r.source,
                verdict=ReputationVerdict(r.verdict),
                confidence=r.confidence,
                label=r.label,
                ref=r.ref,
                valid_until=r.valid_until,
            )
            for r in rows
            if r.valid_until is None or r.valid_until > now
        ]

    async def count_indicators(self) -> int:
        return len(await self._db.all(select(SharedIndicatorRow.key)))

    # -- feed cursors ---------------------------------------------------------------------------

    async def feed_cursor(self, source: str) -> dict[str, Any] | None:
        row = await self._db.first(select(IntelFeedRow).where(IntelFeedRow.source == source))
        return None if row is None else json.loads(row.cursor)

    async def save_feed_cursor(self, source: str, cursor: dict[str, Any]) -> None:
        values = {"source": source, "cursor": json.dumps(cursor), "updated_at": datetime.now(UTC)}

        async def work(session: AsyncSession) -> None:
            statement = self._db.insert(IntelFeedRow, values).on_conflict_do_update(
                index_elements=[_FEEDS.c.source],
                set_={"cursor": values["cursor"], "updated_at": values["updated_at"]},
            )
            await session.exec(statement)

        await self._db.run(work, write=True)
