"""The audit hash chain on both databases: concurrency (A2, D8) and tamper detection (A1)."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

from sqlalchemy import text

from orchestrator.store import AuditAnchor, Store
from orchestrator.store.audit import GENESIS, entry_hash
from tests.orchestrator.store.store_factories import make_event

_CONTENT = (
    "at, type, actor, incident_id, target, outcome, source, approval_ref, "
    "policy_decision_id, detail, prev_hash, hash"
)


async def _append(store: Store, count: int) -> None:
    for n in range(count):
        await store.append_audit(make_event(n))


async def _sql(store: Store, statement: str, **params: Any) -> None:
    async with store.engine.begin() as conn:
        await conn.execute(text(statement), params)


async def _swap_content(store: Store, a: int, b: int) -> None:
    """Exchange everything but `seq` between two rows (an attacker reordering history)."""
    async with store.engine.begin() as conn:
        rows = {
            row["seq"]: dict(row)
            for row in (
                await conn.execute(
                    text(f"SELECT seq, {_CONTENT} FROM audit_log WHERE seq IN (:a, :b)"),
                    {"a": a, "b": b},
                )
            ).mappings()
        }
        assignments = ", ".join(f"{name} = :{name}" for name in _CONTENT.split(", "))
        for seq, other in ((a, b), (b, a)):
            values = {**rows[other], "seq": seq}
            await conn.execute(text(f"UPDATE audit_log SET {assignments} WHERE seq = :seq"), values)


async def test_concurrent_appenders_make_one_linear_chain(
    store: Store, anchor: AuditAnchor
) -> None:
    await asyncio.gather(_append(store, 200), _append(store, 200))

    entries = await store.audit_entries()
    assert [e.seq for e in entries] == list(range(1, 401))
    assert entries[0].prev_hash == GENESIS
    assert all(e.prev_hash == p.hash for p, e in itertools.pairwise(entries))
    assert len({e.prev_hash for e in entries}) == 400
    assert all(p.at <= e.at for p, e in itertools.pairwise(entries))
    assert [(a.seq, a.hash) for a in await anchor.entries()] == [
        (seq, entries[seq - 1].hash) for seq in (100, 200, 300, 400)
    ]
    verification = await store.verify_audit(anchor)
    assert verification.ok and verification.entries == 400, verification.reason


async def test_audit_records_round_trip(store: Store) -> None:
    appended = await store.append_audit(make_event(7, incident_id="inc-9"))
    await store.append_audit(make_event(8, incident_id=None))

    assert await store.audit_entries(incident_id="inc-9") == [appended]
    assert appended.detail == {
        "n": 7,
        "risk": 70.5,
        "already_in_state": False,
        "note": "ok",
        "ticket": None,
    }


async def test_verify_reports_an_updated_middle_row(store: Store) -> None:
    await _append(store, 20)
    await _sql(store, "UPDATE audit_log SET outcome = 'failed' WHERE seq = 8")

    verification = await store.verify_audit()

    assert (verification.ok, verification.first_bad_seq) == (False, 8)
    assert verification.entries == 7


async def test_verify_reports_a_deleted_middle_row(store: Store) -> None:
    await _append(store, 20)
    await _sql(store, "DELETE FROM audit_log WHERE seq = 11")

    verification = await store.verify_audit()

    assert (verification.ok, verification.first_bad_seq) == (False, 11)


async def test_verify_reports_swapped_rows(store: Store) -> None:
    await _append(store, 20)
    await _swap_content(store, 5, 9)

    verification = await store.verify_audit()

    assert (verification.ok, verification.first_bad_seq) == (False, 5)


async def test_tail_truncation_is_caught_only_with_the_anchor(
    store: Store, anchor: AuditAnchor
) -> None:
    await _append(store, 20)
    await store.anchor_now()
    await _sql(store, "DELETE FROM audit_log WHERE seq > 17")

    chain_only = await store.verify_audit()
    with_anchor = await store.verify_audit(anchor)

    assert chain_only.ok and chain_only.entries == 17
    assert (with_anchor.ok, with_anchor.first_bad_seq) == (False, 18)


async def test_rewritten_chain_is_caught_by_the_anchor(store: Store, anchor: AuditAnchor) -> None:
    await _append(store, 10)
    await store.anchor_now()
    # The attacker edits seq 4 and recomputes every hash after it, so the chain verifies.
    entries = await store.audit_entries()
    prev = entries[2].hash
    for entry in entries[3:]:
        forged = entry.model_copy(update={"outcome": "failed"} if entry.seq == 4 else {})
        digest = entry_hash(prev, forged.seq, forged.at, forged)
        await _sql(
            store,
            "UPDATE audit_log SET outcome = :o, prev_hash = :p, hash = :h WHERE seq = :s",
            o=forged.outcome,
            p=prev,
            h=digest,
            s=forged.seq,
        )
        prev = digest

    assert (await store.verify_audit()).ok
    with_anchor = await store.verify_audit(anchor)
    assert (with_anchor.ok, with_anchor.first_bad_seq) == (False, 10)


async def test_closing_an_incident_anchors_the_head(store: Store, anchor: AuditAnchor) -> None:
    from tests.orchestrator.store.store_factories import T0, make_incident

    await store.ensure_incident(make_incident("inc-1"))
    await _append(store, 3)

    await store.close_incident("inc-1", "done", T0)

    assert [(a.seq) for a in await anchor.entries()] == [3]
