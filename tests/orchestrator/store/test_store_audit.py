"""The audit hash chain on both databases: concurrency (A2, D8) and tamper detection (A1), with
the anchors that bound what a cut or rewritten tail can hide: every `anchor_every` entries, every
incident close, and the schedule."""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from typing import Any

import pytest

from orchestrator.store import AuditAnchor, Store
from orchestrator.store.anchors import anchor_periodically
from orchestrator.store.audit import GENESIS, entry_hash
from tests.orchestrator.store.store_factories import make_event
from tests.orchestrator.store.tamper import CONTENT, TAMPERS, Tamper, sql


async def _append(store: Store, count: int, actor: str = "worker-a") -> None:
    for n in range(count):
        await store.append_audit(make_event(n, actor=actor))


async def _sql(store: Store, statement: str, **params: Any) -> None:
    await sql(store.engine, statement, **params)


async def test_concurrent_appenders_make_one_linear_chain(
    store: Store, anchor: AuditAnchor
) -> None:
    # A2: two writers x 500 appends, each its own transaction, interleaved on one lock.
    await asyncio.gather(
        _append(store, 500, actor="writer-a"), _append(store, 500, actor="writer-b")
    )

    entries = await store.audit_entries()
    assert [e.seq for e in entries] == list(range(1, 1001))
    assert entries[0].prev_hash == GENESIS
    assert all(e.prev_hash == p.hash for p, e in itertools.pairwise(entries))
    assert len({e.prev_hash for e in entries}) == 1000
    assert all(p.at <= e.at for p, e in itertools.pairwise(entries))
    assert Counter(e.actor for e in entries) == {"writer-a": 500, "writer-b": 500}
    assert [(a.seq, a.hash) for a in await anchor.entries()] == [
        (seq, entries[seq - 1].hash) for seq in range(100, 1001, 100)
    ]
    verification = await store.verify_audit(anchor)
    assert verification.ok and verification.entries == 1000, verification.reason
    assert verification.anchors_matched == 10


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


@pytest.mark.parametrize("tamper", TAMPERS, ids=[t.name for t in TAMPERS])
async def test_verify_names_the_first_bad_seq(
    store: Store, anchor: AuditAnchor, tamper: Tamper
) -> None:
    await _append(store, 20)
    await store.anchor_now()
    await tamper.apply(store.engine)

    chain_only = await store.verify_audit()
    with_anchor = await store.verify_audit(anchor)

    if tamper.kind == "truncated":  # A1: the chain alone passes, chain + anchor fails
        assert chain_only.ok and chain_only.entries == tamper.first_bad_seq - 1
    else:
        assert (chain_only.ok, chain_only.first_bad_seq) == (False, tamper.first_bad_seq)
        assert chain_only.reason.startswith(f"{tamper.kind}: seq {tamper.first_bad_seq}")
    assert (with_anchor.ok, with_anchor.first_bad_seq) == (False, tamper.first_bad_seq)
    assert with_anchor.reason.startswith(tamper.kind), with_anchor.reason
    assert with_anchor.entries == tamper.first_bad_seq - 1


async def test_verify_reports_a_row_inserted_before_the_first(store: Store) -> None:
    await _append(store, 3)
    first = (await store.audit_entries())[0]
    await _sql(
        store,
        f"INSERT INTO audit_log (seq, {CONTENT}) SELECT 0, {CONTENT} FROM audit_log "
        "WHERE seq = :seq",
        seq=first.seq,
    )

    verification = await store.verify_audit()

    assert (verification.ok, verification.first_bad_seq) == (False, 0)
    assert verification.reason.startswith("inserted: seq 0"), verification.reason


async def test_verify_reports_a_row_that_does_not_parse(store: Store) -> None:
    await _append(store, 6)
    await _sql(store, "UPDATE audit_log SET detail = 'not json' WHERE seq = 4")

    verification = await store.verify_audit()

    assert (verification.ok, verification.first_bad_seq) == (False, 4)
    assert verification.reason.startswith("malformed: seq 4 cannot be read"), verification.reason


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
    assert with_anchor.reason.startswith("anchor mismatch: seq 10"), with_anchor.reason


async def test_closing_an_incident_anchors_the_head(store: Store, anchor: AuditAnchor) -> None:
    from tests.orchestrator.store.store_factories import T0, make_incident

    await store.ensure_incident(make_incident("inc-1"))
    await _append(store, 3)

    await store.close_incident("inc-1", "done", T0)

    assert [(a.seq) for a in await anchor.entries()] == [3]


async def _anchored(anchor: AuditAnchor, seq: int, timeout_s: float = 5.0) -> None:
    """Wait until `seq` is the newest anchored head."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while max((a.seq for a in await anchor.entries()), default=0) != seq:
        assert asyncio.get_running_loop().time() < deadline, f"seq {seq} never anchored"
        await asyncio.sleep(0.01)


async def test_the_schedule_bounds_what_a_cut_tail_can_hide(
    store: Store, anchor: AuditAnchor
) -> None:
    schedule = asyncio.create_task(anchor_periodically(store.anchor_if_moved, 0.05))
    try:
        await _append(store, 8)
        await _anchored(anchor, 8)  # 8 entries: never a multiple of 100, only the schedule
    finally:
        schedule.cancel()
    await _append(store, 2)  # seq 9 and 10: appended after the newest anchor

    # What can go undetected: exactly the entries after the newest anchor.
    await _sql(store, "DELETE FROM audit_log WHERE seq > 8")
    unanchored_cut = await store.verify_audit(anchor)
    # What cannot: anything at or before it.
    await _sql(store, "DELETE FROM audit_log WHERE seq > 6")
    anchored_cut = await store.verify_audit(anchor)

    assert unanchored_cut.ok and unanchored_cut.entries == 8
    assert (anchored_cut.ok, anchored_cut.first_bad_seq) == (False, 7)
    assert anchored_cut.reason.startswith("truncated: anchored head seq 8"), anchored_cut.reason


async def test_the_schedule_writes_the_head_only_when_it_moved(
    store: Store, anchor: AuditAnchor
) -> None:
    await _append(store, 3)  # before the schedule starts: no tick can see seq 1 or 2
    schedule = asyncio.create_task(anchor_periodically(store.anchor_if_moved, 0.02))
    try:
        await _anchored(anchor, 3)
        await asyncio.sleep(0.2)  # ten more ticks with the head still at seq 3
        idle = [a.seq for a in await anchor.entries()]
        await _append(store, 1)
        await _anchored(anchor, 4)
    finally:
        schedule.cancel()

    assert idle == [3]
    assert [a.seq for a in await anchor.entries()] == [3, 4]
