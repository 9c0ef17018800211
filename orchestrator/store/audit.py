"""The audit log's hash chain: hashing, appending under a lock, verifying, and the external anchor.

Entry n stores `hash = sha256(prev_hash + canonical JSON of its fields, seq and at included)` and
`prev_hash` = entry n-1's hash (`GENESIS` for seq 1), with seq strictly consecutive from 1.
Appenders serialise on one lock (SQLite: the `BEGIN IMMEDIATE` write lock the store's write
transactions take; Postgres: a transaction-scoped advisory lock), so concurrent workers produce one
linear chain. A chain alone cannot reveal that its tail was cut off; the `AuditAnchor`, an
append-only JSONL file outside the database holding `(seq, hash, at)` of past heads, can.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

from pydantic import AwareDatetime, BaseModel, ConfigDict, ValidationError
from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from orchestrator.store.records import AuditEvent, AuditRecord, AuditVerification
from orchestrator.store.tables import AuditRow
from orchestrator.store.transactions import Transactions

GENESIS = "0" * 64
# pg_advisory_xact_lock key for appenders: the bytes of "garrison" as a signed 64-bit integer.
PG_AUDIT_LOCK = int.from_bytes(b"garrison", "big", signed=True)
_VERIFY_PAGE = 1_000


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


async def append(session: AsyncSession, event: AuditEvent, *, postgres: bool) -> AuditRecord:
    """Append one entry inside the caller's write transaction (which must hold the lock)."""
    if postgres:
        await session.exec(select(func.pg_advisory_xact_lock(PG_AUDIT_LOCK)))
    head = (
        await session.exec(select(AuditRow).order_by(col(AuditRow.seq).desc()).limit(1))
    ).first()
    seq = 1 if head is None else head.seq + 1
    prev_hash = GENESIS if head is None else head.hash
    # Taken under the lock, so `at` never goes backwards along the chain.
    at = datetime.now(UTC)
    digest = entry_hash(prev_hash, seq, at, event)
    session.add(
        AuditRow(
            seq=seq,
            at=at,
            type=event.type,
            actor=event.actor,
            incident_id=event.incident_id,
            target=event.target,
            outcome=event.outcome,
            source=event.source,
            approval_ref=event.approval_ref,
            policy_decision_id=event.policy_decision_id,
            detail=canonical_detail(event.detail),
            prev_hash=prev_hash,
            hash=digest,
        )
    )
    await session.flush()
    return AuditRecord(**event.model_dump(), seq=seq, at=at, prev_hash=prev_hash, hash=digest)


class AnchorEntry(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    seq: int
    hash: str
    at: AwareDatetime


class AuditAnchor:
    """An append-only JSONL file of chain heads, kept outside the database (ideally elsewhere)."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)

    async def write(self, head: AuditRecord) -> AnchorEntry:
        entry = AnchorEntry(seq=head.seq, hash=head.hash, at=head.at)
        await asyncio.to_thread(self._append_line, entry.model_dump_json() + "\n")
        return entry

    async def entries(self) -> list[AnchorEntry]:
        return await asyncio.to_thread(self._read)

    def _append_line(self, line: str) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # One small O_APPEND write per head keeps concurrent writers' lines whole.
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line.encode())
            os.fsync(fd)
        finally:
            os.close(fd)

    def _read(self) -> list[AnchorEntry]:
        if not self.path.exists():
            return []
        lines = self.path.read_text().splitlines()
        entries: list[AnchorEntry] = []
        for number, line in enumerate(lines, start=1):
            try:
                entries.append(AnchorEntry.model_validate_json(line))
            except ValidationError:
                # A crash can leave the last line half-written; anything else is damage.
                if number != len(lines):
                    raise
        return entries


class ChainVerifier:
    """Walks entries in seq order and stops at the first that does not link or does not hash."""

    def __init__(self, anchors: Iterable[AnchorEntry] = ()) -> None:
        self._anchors = {entry.seq: entry.hash for entry in anchors}
        self._expected_seq = 1
        self._prev_hash = GENESIS
        self.bad_seq: int | None = None
        self.reason = ""

    @property
    def entries(self) -> int:
        return self._expected_seq - 1

    def feed(self, record: AuditRecord) -> bool:
        """Check the next entry; False once the chain is broken (further feeding is pointless)."""
        if self.bad_seq is not None:
            return False
        seq = self._expected_seq
        if record.seq != seq:
            return self._fail(seq, f"seq {seq} is missing (next entry is seq {record.seq})")
        if record.prev_hash != self._prev_hash:
            return self._fail(seq, f"seq {seq} does not link to the previous entry's hash")
        if entry_hash(record.prev_hash, record.seq, record.at, record) != record.hash:
            return self._fail(seq, f"seq {seq} does not match its hash (content altered)")
        anchored = self._anchors.get(seq)
        if anchored is not None and anchored != record.hash:
            return self._fail(seq, f"seq {seq} differs from its anchored hash (chain rewritten)")
        self._prev_hash = record.hash
        self._expected_seq += 1
        return True

    def result(self) -> AuditVerification:
        if self.bad_seq is not None:
            return AuditVerification(
                ok=False, entries=self.entries, first_bad_seq=self.bad_seq, reason=self.reason
            )
        beyond = sorted(seq for seq in self._anchors if seq > self.entries)
        if beyond:
            return AuditVerification(
                ok=False,
                entries=self.entries,
                first_bad_seq=self.entries + 1,
                reason=f"anchored head seq {beyond[-1]} is missing: log truncated after "
                f"seq {self.entries}",
            )
        anchored = f", {len(self._anchors)} anchor(s) matched" if self._anchors else ""
        return AuditVerification(
            ok=True, entries=self.entries, reason=f"{self.entries} entries verified{anchored}"
        )

    def _fail(self, seq: int, reason: str) -> bool:
        self.bad_seq = seq
        self.reason = reason
        return False


async def verify(db: Transactions, anchor: AuditAnchor | None) -> AuditVerification:
    """Walk the chain from seq 1 in pages; with an anchor, every anchored head must be there."""
    verifier = ChainVerifier(await anchor.entries() if anchor is not None else ())
    last = 0
    while True:
        query = (
            select(AuditRow)
            .where(col(AuditRow.seq) > last)
            .order_by(col(AuditRow.seq))
            .limit(_VERIFY_PAGE)
        )
        page = await db.all(query)
        for row in page:
            if not verifier.feed(record_from_row(row)):
                return verifier.result()
        if len(page) < _VERIFY_PAGE:
            return verifier.result()
        last = page[-1].seq
