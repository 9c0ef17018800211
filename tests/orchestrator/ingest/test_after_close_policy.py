"""The late-alert decision and the reopened run's carry, as pure functions: what reopens a closed
incident (a new host or person; a higher severity only when the policy says so), what only
attaches (noise, a policy of `never`), the bound of one reopen per interval, and a carry that
recalls every earlier decision, keeps the ticket and never reuses an earlier run's keys."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from agents.models import OutcomeStatus
from orchestrator.ingest.after_close import (
    AFTER_CLOSE,
    CLOSED,
    REOPENED,
    Outcome,
    Reopens,
    before_facts,
    new_entities,
    on_facts,
    raised_severity,
)
from orchestrator.ingest.reopen import REOPEN_SPAN, CannotReopen, reopen_carry
from orchestrator.models import (
    DeniedActionView,
    ExecutedActionView,
    IncidentResult,
    TicketingView,
    TicketWorkKind,
)
from orchestrator.policy.model import AfterClose, ReopenWhen
from orchestrator.store.records import (
    ActionRecord,
    ActionStatus,
    AuditRecord,
    IncidentRecord,
)
from tools.actions import BlockIp, DisableAccount, IsolateHost, business_key
from tools.models import (
    Alert,
    AlertEntities,
    Category,
    IncidentStatus,
    RuleRef,
    Severity,
    Verdict,
)

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


def seen(uid: str, host: str | None, user: str | None = None, severity=Severity.HIGH) -> Alert:
    return Alert(
        uid=uid,
        time=NOW,
        title="t",
        severity=severity,
        product="test",
        rule=RuleRef(uid="r", name="r"),
        entities=AlertEntities(host=host, user=user),
    )


def test_noise_attaches_and_a_new_host_or_person_reopens() -> None:
    before = [seen("a1", "WS01.corp.local", "CORP\\ann")]
    noise = [seen("a2", "ws01", "ann@corp.com"), seen("a3", "WS01", "NT AUTHORITY\\SYSTEM")]
    assert new_entities(noise, before) == []
    assert on_facts(ReopenWhen.ON_NEW_ENTITY, [], None).outcome is Outcome.ATTACHED
    fresh = new_entities([*noise, seen("a4", "WS02", "CORP\\bob")], before)
    assert fresh == ["host:WS02", "user:CORP\\bob"]
    decided = on_facts(ReopenWhen.ON_NEW_ENTITY, fresh, None)
    assert decided.outcome is Outcome.REOPENED and "WS02" in decided.reason


def test_a_higher_severity_reopens_only_when_the_policy_says_so() -> None:
    after = [seen("a2", "WS01", severity=Severity.CRITICAL)]
    raised = raised_severity(after, Severity.MEDIUM)
    assert raised is Severity.CRITICAL
    assert raised_severity(after, Severity.CRITICAL) is None
    assert on_facts(ReopenWhen.ON_NEW_ENTITY, [], raised).outcome is Outcome.ATTACHED
    either = on_facts(ReopenWhen.ON_NEW_ENTITY_OR_SEVERITY, [], raised)
    assert either.outcome is Outcome.REOPENED


def _audit(seq: int, kind: str, at: datetime) -> AuditRecord:
    return AuditRecord(
        seq=seq,
        at=at,
        prev_hash="0" * 64,
        hash="1" * 64,
        type=kind,
        actor="a",
        outcome="o",
        source="s",
        incident_id="i",
    )


def _incident(status: IncidentStatus = IncidentStatus.CLOSED) -> IncidentRecord:
    return IncidentRecord(
        id="live--x",
        group_key="live:corr:x:live--x",
        title="x",
        status=status,
        verdict=Verdict.MALICIOUS,
        severity=Severity.HIGH,
        category=Category.LATERAL_MOVEMENT,
        confidence=0.8,
        playbook="lateral-movement",
        opened_at=NOW - timedelta(hours=2),
        closed_at=NOW - timedelta(hours=1),
    )


def test_at_most_one_reopen_per_interval_and_never_means_attach() -> None:
    rules = AfterClose(reopen_interval_s=3600)
    entries = [
        _audit(1, CLOSED, NOW - timedelta(minutes=50)),
        _audit(2, REOPENED, NOW - timedelta(minutes=40)),
        _audit(3, CLOSED, NOW - timedelta(minutes=30)),
    ]
    reopens = Reopens.of(entries, _incident())
    assert (reopens.count, reopens.pending) == (1, False)
    held = before_facts(ReopenWhen.ON_NEW_ENTITY, rules, reopens, NOW)
    assert held is not None and held.outcome is Outcome.HELD
    later = NOW + timedelta(minutes=21)
    assert before_facts(ReopenWhen.ON_NEW_ENTITY, rules, reopens, later) is None
    never = before_facts(ReopenWhen.NEVER, rules, Reopens(), NOW)
    assert never is not None and never.outcome is Outcome.ATTACHED


def test_a_reopen_audited_but_not_closed_since_is_pending_while_the_store_says_open() -> None:
    entries = [
        _audit(1, CLOSED, NOW - timedelta(minutes=50)),
        _audit(2, AFTER_CLOSE, NOW - timedelta(minutes=40)),
        _audit(3, REOPENED, NOW - timedelta(minutes=40)),
    ]
    assert Reopens.of(entries, _incident(IncidentStatus.OPEN)).pending
    assert not Reopens.of(entries, _incident(IncidentStatus.CLOSED)).pending


def _result(ticketing: TicketingView | None) -> IncidentResult:
    isolate = IsolateHost(target="WS01")
    return IncidentResult(
        incident_id="live--x",
        verdict=Verdict.MALICIOUS,
        confidence=0.9,
        category="lateral_movement",
        started_at=NOW - timedelta(hours=2),
        closed_at=NOW - timedelta(hours=1),
        executed=[
            ExecutedActionView(
                action=isolate,
                risk=40,
                approved_by=[],
                approval_required=False,
                protected=False,
                at=NOW,
                approval_wait_s=3.0,
                execution_s=1.5,
            )
        ],
        denied=[DeniedActionView(action=DisableAccount(target="ann"), risk=70, reason="expired")],
        approvals_requested=1,
        summary="done",
        ticketing=ticketing,
    )


def test_the_carry_recalls_every_decision_keeps_the_ticket_and_uses_fresh_keys() -> None:
    failed = BlockIp(target="203.0.113.9")
    ledger = [
        ActionRecord(
            business_key=business_key("live--x", failed),
            incident_id="live--x",
            action=failed,
            risk=30,
            decision="allow",
            status=ActionStatus.FAILED,
            outcome="vendor refused",
            created_at=NOW,
        )
    ]
    view = TicketingView(ticket_id="T-1", delivered=9)
    alerts = [seen("a1", "WS01", "CORP\\ann")]
    carry = reopen_carry(
        incident=_incident(),
        result=_result(view),
        seen=alerts,
        ticket_id="T-1",
        ledger=ledger,
        number=2,
    )
    recalled = {(o.action.kind.value, o.action.target): o.status for o in carry.earlier_outcomes}
    assert recalled == {
        ("isolate_host", "WS01"): OutcomeStatus.EXECUTED,
        ("disable_account", "ann"): OutcomeStatus.DENIED,
        ("block_ip", "203.0.113.9"): OutcomeStatus.FAILED,
    }
    assert carry.handled_uids == carry.alert_uids == ["a1"]
    assert carry.pass_index == 2 * REOPEN_SPAN and not carry.pass_started
    assert carry.isolations == 1 and carry.approval_wait_s == 3.0
    assert carry.tickets is not None and carry.tickets.ticket is not None
    assert carry.tickets.ticket.ticket_id == "T-1" and carry.tickets.queue == []
    assert carry.tickets.next_seq == 2 * REOPEN_SPAN + 1 and carry.tickets.events == 2 * REOPEN_SPAN
    assert carry.triage.playbook_id == "lateral-movement"
    assert carry.triage.entities.hosts == ["WS01"]


def test_a_carry_without_a_ticket_opens_it_and_without_a_triage_cannot_be_built() -> None:
    carry = reopen_carry(
        incident=_incident(),
        result=_result(TicketingView()),
        seen=[],
        ticket_id=None,
        ledger=[],
        number=1,
    )
    assert carry.tickets is not None
    assert [w.kind for w in carry.tickets.queue] == [TicketWorkKind.OPEN]
    untriaged = _incident().model_copy(update={"playbook": None})
    with pytest.raises(CannotReopen):
        reopen_carry(
            incident=untriaged, result=_result(None), seen=[], ticket_id="T", ledger=[], number=1
        )
