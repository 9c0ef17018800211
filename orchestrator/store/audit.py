"""The audit log's hash chain: hashing, appending under a lock, and verifying against anchors.

Entry n stores `hash = sha256(prev_hash + canonical JSON of its fields, seq and at included)` and
`prev_hash` = entry n-1's hash (`GENESIS` for seq 1), with seq strictly consecutive from 1.
Appenders serialise on one lock (SQLite: the `BEGIN IMMEDIATE` write lock the store's write
transactions take; Postgres: a transaction-scoped advisory lock), so concurrent workers produce one
linear chain. A chain alone cannot reveal that its tail was cut off, or rewritten with every hash
recomputed; past heads kept outside the database (`anchors.py`) can, up to the newest anchor.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Protocol

from sqlalchemy import func, insert
from sqlalchemy import select as sa_select
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from orchestrator.store.anchors import AnchorEntry
from orchestrator.store.columns import table_of
from orchestrator.store.records import AuditEvent, AuditRecord, AuditVerification
from orchestrator.store.tables import AuditRow
from orchestrator.store.transactions import Transactions

GENESIS = "0" * 64
# pg_advisory_xact_lock key for appenders: the bytes of "garrison" as a signed 64-bit integer.
PG_AUDIT_LOCK = int.from_bytes(b"garrison", "big", signed=True)
_VERIFY_PAGE = 1_000
_AUDIT = table_of(AuditRow)
_PG_LOCK = sa_select(func.pg_advisory_xact_lock(PG_AUDIT_LOCK))
_HEAD = sa_select(_AUDIT.c.seq, _AUDIT.c.hash).order_by(_AUDIT.c.seq.desc()).limit(1)
_INSERT = insert(_AUDIT)


def canonical_at(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="microseconds")


def canonical_detail(detail: dict[str, str | int | float | bool | None]) -> str:
    return json.dumps(detail, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def entry_hash(prev_hash: str, seq: int, at: datetime, event: AuditEvent) -> str:
    body = {
        "seq": seq,
        "at": canonical_at(at),
        "type": event.type,
        "actor": event.actor,
        "incident_id": event.incident_id,
        "target": event.target,
        "outcome": event.outcome,
        "source": event.source,
        "approval_ref": event.approval_ref,
        "policy_decision_id": event.policy_decision_id,
        "detail": event.detail,
    }
    canonical = json.dumps(
        body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )
    return hashlib.sha256((prev_hash + canonical).encode()).hexdigest()


def record_from_row(row: AuditRow) -> AuditRecord:
    return AuditRecord(
        seq=row.seq,
        at=row.at,
        type=row.type,
        actor=row.actor,
        outcome=row.outcome,
        source=row.source,
        incident_id=row.incident_id,
        target=row.target,
        approval_ref=row.approval_ref,
        policy_decision_id=row.policy_decision_id,
        detail=json.loads(row.detail),
        prev_hash=row.prev_hash,
        hash=row.hash,
    )


async def append(connection: AsyncConnection, event: AuditEvent, *, postgres: bool) -> AuditRecord:
    """Append one entry inside the caller's write transaction (which must hold the lock).

    Core statements built once (`_HEAD`, `_INSERT`): the head is read as its seq and hash only
    (not its detail), and the new row is never read back."""
    if postgres:
        await connection.execute(_PG_LOCK)
    head = (await connection.execute(_HEAD)).first()
    seq = 1 if head is None else head.seq + 1
    prev_hash = GENESIS if head is None else head.hash
    # Taken under the lock, so `at` never goes backwards along the chain.
    at = datetime.now(UTC)
    digest = entry_hash(prev_hash, seq, at, event)
    await connection.execute(
        _INSERT,
        {
            "seq": seq,
            "at": at,
            "type": event.type,
            "actor": event.actor,
            "incident_id": event.incident_id,
            "target": event.target,
            "outcome": event.outcome,
            "source": event.source,
            "approval_ref": event.approval_ref,
            "policy_decision_id": event.policy_decision_id,
            "detail": canonical_detail(event.detail),
            "prev_hash": prev_hash,
            "hash": digest,
        },
    )
    return AuditRecord(**event.model_dump(), seq=seq, at=at, prev_hash=prev_hash, hash=digest)


async def append_in(
    session: AsyncSession, events: Sequence[AuditEvent], *, postgres: bool
) -> list[AuditRecord]:
    """Append `events` in order inside the session's write transaction, beside its other
    statements: they commit, or roll back, together."""
    connection = await session.connection()
    return [await append(connection, event, postgres=postgres) for event in events]


class AnchorSource(Protocol):
    """What the verifier reads anchors from: an anchor file, or a sink that says it cannot."""

    async def entries(self) -> list[AnchorEntry]: ...


class ChainVerifier:
    """Walks entries in seq order and stops at the first that does not link, hash or match its
    anchor; each reason starts with its kind (gap, inserted, prev_hash break, hash mismatch,
    anchor mismatch, truncated)."""

    def __init__(self, anchors: Iterable[AnchorEntry] = ()) -> None:
        # A seq anchored twice with different hashes matches no entry: that too is a finding.
        self._anchors: dict[int, set[str]] = defaultdict(set)
        for entry in anchors:
            self._anchors[entry.seq].add(entry.hash)
        self._expected_seq = 1
        self._prev_hash = GENESIS
        self._matched = 0
        self._anchored_seq = 0
        self.bad_seq: int | None = None
        self.reason = ""

    @property
    def entries(self) -> int:
        return self._expected_seq - 1

    def feed(self, record: AuditRecord) -> bool:
        """Check the next entry; False once the chain is broken (further feeding is pointless)."""
        if not self._in_place(record.seq):
            return False
        seq = self._expected_seq
        if record.prev_hash != self._prev_hash:
            return self._fail(
                seq, f"prev_hash break: seq {seq} does not link to seq {seq - 1}'s hash"
            )
        if entry_hash(record.prev_hash, record.seq, record.at, record) != record.hash:
            return self._fail(
                seq, f"hash mismatch: seq {seq}'s content does not match its hash (altered)"
            )
        anchored = self._anchors.get(seq)
        if anchored:
            if anchored != {record.hash}:
                return self._fail(
                    seq,
                    f"anchor mismatch: seq {seq}'s hash differs from its anchored hash "
                    "(the chain was rewritten)",
                )
            self._matched += 1
            self._anchored_seq = seq
        self._prev_hash = record.hash
        self._expected_seq += 1
        return True

    def unreadable(self, seq: int, why: str) -> bool:
        """A row that does not even parse as an entry (a hostile value in a column)."""
        if self._in_place(seq):
            self._fail(seq, f"malformed: seq {seq} cannot be read ({why})")
        return False

    def _in_place(self, seq: int) -> bool:
        if self.bad_seq is not None:
            return False
        expected = self._expected_seq
        if seq < expected:
            return self._fail(seq, f"inserted: seq {seq} comes before seq {expected}")
        if seq != expected:
            return self._fail(expected, f"gap: seq {expected} is missing (the next entry is {seq})")
        return True

    def result(self) -> AuditVerification:
        found = {"anchors_matched": self._matched, "anchored_seq": self._anchored_seq}
        if self.bad_seq is not None:
            return AuditVerification(
                ok=False,
                entries=self.entries,
                first_bad_seq=self.bad_seq,
                reason=self.reason,
                **found,
            )
        beyond = max((seq for seq in self._anchors if seq > self.entries), default=None)
        if beyond is not None:
            return AuditVerification(
                ok=False,
                entries=self.entries,
                first_bad_seq=self.entries + 1,
                reason=f"truncated: anchored head seq {beyond} is missing; the log ends at "
                f"seq {self.entries}",
                **found,
            )
        return AuditVerification(
            ok=True,
            entries=self.entries,
            reason=f"{self.entries} entries verified, {self._matched} "
            f"anchor{'' if self._matched == 1 else 's'} matched, head seq {self.entries}",
            **found,
        )

    def _fail(self, seq: int, reason: str) -> bool:
        self.bad_seq = seq
        self.reason = reason
        return False


async def verify(db: Transactions, anchor: AnchorSource | None) -> AuditVerification:
    """Walk the chain from its lowest seq in pages; with anchors, every anchored head must be
    there with its hash. Raises `AnchorError` when the anchors cannot be read."""
    verifier = ChainVerifier(await anchor.entries() if anchor is not None else ())
    last: int | None = None
    while True:
        query = select(AuditRow).order_by(col(AuditRow.seq)).limit(_VERIFY_PAGE)
        if last is not None:
            query = query.where(col(AuditRow.seq) > last)
        page = await db.all(query)
        for row in page:
            try:
                record = record_from_row(row)
            except ValueError as error:  # pydantic's ValidationError, or a detail not JSON
                why = str(error).strip().splitlines()[0]
                verifier.unreadable(row.seq, why)
                return verifier.result()
            if not verifier.feed(record):
                return verifier.result()
        if len(page) < _VERIFY_PAGE:
            return verifier.result()
        last = page[-1].seq
