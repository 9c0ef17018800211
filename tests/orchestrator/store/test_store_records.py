"""Alerts, incidents, ledger, approvals and tickets on both databases."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from orchestrator.store import (
    ActionStatus,
    ApprovalDecision,
    ApprovalStatus,
    ConflictError,
    NotFoundError,
    Store,
    TicketRecord,
    TicketStatus,
)
from tests.orchestrator.store.store_factories import (
    T0,
    make_action_record,
    make_alert,
    make_approval,
    make_event,
    make_incident,
)
from tools.actions import BlockIp, KillProcess, ReleaseHost
from tools.models import Category, IncidentStatus, Severity, Verdict


async def test_add_alert_dedupes_by_fingerprint(store: Store) -> None:
    alert = make_alert("alert-1")

    first = await store.add_alert(alert, "inc-1", "fp-1")
    again = await store.add_alert(make_alert("alert-2"), "inc-2", "fp-1")
    other = await store.add_alert(make_alert("alert-3"), "inc-1", "fp-3")

    assert (first, again, other) == (True, False, True)
    assert await store.alerts_for("inc-1") == [alert, make_alert("alert-3")]
    assert await store.alerts_for("inc-2") == []
    stored = await store.get_alert("fp-1")
    assert stored is not None and stored.incident_id == "inc-1" and stored.alert == alert


async def test_add_alert_concurrent_duplicates_store_one(store: Store) -> None:
    results = await asyncio.gather(
        *(store.add_alert(make_alert("alert-1"), "inc-1", "fp-1") for _ in range(10))
    )

    assert sorted(results) == [False] * 9 + [True]
    assert len(await store.alerts_for("inc-1")) == 1


async def test_ensure_incident_is_idempotent(store: Store) -> None:
    created = await store.ensure_incident(make_incident("inc-1"))
    renamed = make_incident("inc-1").model_copy(update={"title": "another title"})

    again = await store.ensure_incident(renamed)

    assert again == created
    assert again.title == "Suspicious LSASS access on WS01"
    assert await store.list_incidents() == [created]


async def test_ensure_incident_refuses_a_taken_group_key(store: Store) -> None:
    await store.ensure_incident(make_incident("inc-1", group_key="g"))

    with pytest.raises(ConflictError):
        await store.ensure_incident(make_incident("inc-2", group_key="g"))


async def test_incident_triage_and_close(store: Store) -> None:
    await store.ensure_incident(make_incident("inc-1"))
    await store.ensure_incident(make_incident("inc-2"))

    triaged = await store.record_triage(
        "inc-1", Verdict.MALICIOUS, Severity.HIGH, Category.CREDENTIAL_ACCESS, 0.9, "cred_theft"
    )
    closed = await store.close_incident("inc-1", "host isolated", T0 + timedelta(hours=1))
    reclosed = await store.close_incident("inc-1", "second summary", T0 + timedelta(hours=2))

    assert triaged.status is IncidentStatus.TRIAGED and triaged.confidence == 0.9
    assert closed.status is IncidentStatus.CLOSED
    assert closed.closed_at == T0 + timedelta(hours=1)
    assert reclosed == closed
    assert [i.id for i in await store.list_incidents(status=IncidentStatus.OPEN)] == ["inc-2"]
    with pytest.raises(NotFoundError):
        await store.close_incident("nope", "x", T0)


async def test_ledger_begin_under_concurrency_yields_one_row(store: Store) -> None:
    record = make_action_record("inc-1")

    results = await asyncio.gather(*(store.ledger_begin(record) for _ in range(20)))

    assert all(result == record for result in results)
    assert await store.actions_for("inc-1") == [record]


async def test_ledger_finish_records_outcome_and_inverse(store: Store) -> None:
    record = await store.ledger_begin(make_action_record("inc-1"))
    await store.ledger_begin(make_action_record("inc-1", KillProcess(target="WS01:4242")))

    done = await store.ledger_finish(
        record.business_key,
        ActionStatus.SUCCEEDED,
        outcome="succeeded (confirmed by state read)",
        already_in_state=True,
        verified=True,
        inverse=ReleaseHost(target="WS01"),
        completed_at=T0 + timedelta(minutes=5),
    )

    assert done.status is ActionStatus.SUCCEEDED
    assert done.inverse == ReleaseHost(target="WS01")
    assert (done.already_in_state, done.verified) == (True, True)
    assert await store.ledger_get(record.business_key) == done
    assert [a.kind.value for a in await store.actions_for("inc-1")] == [
        "isolate_host",
        "kill_process",
    ]
    with pytest.raises(NotFoundError):
        await store.ledger_finish("inc-1:block_ip:1.2.3.4", ActionStatus.FAILED, outcome="x")


async def test_ledger_finish_appends_its_audit_entry_in_the_same_transaction(store: Store) -> None:
    record = await store.ledger_begin(make_action_record("inc-1"))

    await store.ledger_finish(
        record.business_key, ActionStatus.SUCCEEDED, outcome="isolated", audit_event=make_event(1)
    )
    with pytest.raises(NotFoundError):  # refused inside the transaction: no entry is appended
        await store.ledger_finish(
            "inc-1:block_ip:1.2.3.4", ActionStatus.FAILED, outcome="x", audit_event=make_event(2)
        )

    assert [e.detail["n"] for e in await store.audit_entries("inc-1")] == [1]
    assert (await store.verify_audit()).ok


def test_action_record_refuses_a_mismatched_business_key() -> None:
    record = make_action_record("inc-1")

    with pytest.raises(ValueError, match="business_key"):
        record.model_validate(
            {**record.model_dump(), "action": BlockIp(target="10.0.0.1").model_dump()}
        )


async def test_approval_cas_has_exactly_one_winner(store: Store) -> None:
    approval = await store.create_approval(make_approval("appr-1"))
    targets = [ApprovalStatus.APPROVED, ApprovalStatus.DENIED] * 25

    wins = await asyncio.gather(
        *(store.transition_approval("appr-1", to, T0 + timedelta(minutes=1)) for to in targets)
    )

    assert wins.count(True) == 1
    winner = targets[wins.index(True)]
    stored = await store.get_approval("appr-1")
    assert stored is not None and stored.status is winner
    assert stored.decided_at == T0 + timedelta(minutes=1)
    assert approval.status is ApprovalStatus.PENDING
    assert await store.list_approvals(status=ApprovalStatus.PENDING) == []


async def test_create_approval_is_idempotent_on_id(store: Store) -> None:
    first = await store.create_approval(make_approval("appr-1"))
    again = await store.create_approval(make_approval("appr-1"))
    rebound = make_approval("appr-1").model_copy(update={"action_hash": "different"})

    assert again == first
    assert await store.list_approvals(incident_id="inc-1") == [first]
    with pytest.raises(ConflictError):
        await store.create_approval(rebound)


async def test_an_approval_is_created_with_its_audit_entries_in_one_transaction(
    store: Store,
) -> None:
    events = [make_event(1), make_event(2)]
    created = await store.create_approval(make_approval("appr-1"), events)
    rebound = make_approval("appr-1").model_copy(update={"action_hash": "different"})

    assert await store.list_approvals(incident_id="inc-1") == [created]
    entries = await store.audit_entries("inc-1")
    assert [e.detail for e in entries] == [e.detail for e in events]  # in order, both
    with pytest.raises(ConflictError):
        await store.create_approval(rebound, [make_event(3)])
    assert len(await store.audit_entries("inc-1")) == 2  # the refused one wrote nothing
    assert (await store.verify_audit()).ok


async def test_approval_decisions_count_each_user_once(store: Store) -> None:
    await store.create_approval(make_approval("appr-1"))
    alice = ApprovalDecision(user="U-alice", decision="approve", channel="slack", at=T0)
    bob = ApprovalDecision(user="U-bob", decision="deny", channel="cli", at=T0)

    await asyncio.gather(*(store.add_approval_decision("appr-1", alice) for _ in range(5)))
    await store.add_approval_decision("appr-1", bob)
    await store.transition_approval("appr-1", ApprovalStatus.APPROVED, T0)
    late = ApprovalDecision(user="U-carol", decision="approve", channel="web", at=T0)
    final = await store.add_approval_decision("appr-1", late)

    assert final.decisions == [alice, bob]


async def test_tickets_upsert_one_per_incident(store: Store) -> None:
    opened = TicketRecord(incident_id="inc-1", ticket_id="SEC-1", opened_at=T0)
    await store.tickets.save(opened)
    closed = opened.model_copy(
        update={"status": TicketStatus.CLOSED, "comments": 3, "closed_at": T0 + timedelta(hours=1)}
    )
    await store.tickets.save(closed)

    assert await store.tickets.for_incident("inc-1") == closed
    assert await store.tickets.for_incident("inc-2") is None
