"""`verify_run()`'s judge over facts built by hand: a clean run passes, and each invariant it
claims to check fails when that invariant is broken, naming the incident."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from temporalio.client import WorkflowExecutionStatus

from orchestrator.backends import workflow_id
from orchestrator.store.records import (
    ActionRecord,
    ActionStatus,
    ApprovalDecision,
    ApprovalRecord,
    ApprovalStatus,
    AuditRecord,
    AuditVerification,
    IncidentRecord,
    TicketRecord,
    TicketStatus,
)
from tests.scenarios.oracle import IncidentFacts, RunFacts, RunReport, judge
from tools.actions import IsolateHost, action_hash, business_key
from tools.journal import StateChange
from tools.models import IncidentStatus

AT = datetime(2026, 1, 1, tzinfo=UTC)
THRESHOLD = 50
POLICY = "test-1"


def isolation(
    incident_id: str,
    host: str = "WS1",
    *,
    risk: int = 70,
    approval_id: str | None = "ap-1",
    status: ActionStatus = ActionStatus.SUCCEEDED,
) -> ActionRecord:
    action = IsolateHost(target=host)
    return ActionRecord(
        business_key=business_key(incident_id, action),
        incident_id=incident_id,
        action=action,
        risk=risk,
        decision="approved" if approval_id else "allowed",
        approval_id=approval_id,
        status=status,
        created_at=AT,
    )


def approval(
    action: ActionRecord,
    approvers: tuple[str, ...] = ("sim-analyst-1",),
    *,
    required: int = 1,
    status: ApprovalStatus = ApprovalStatus.APPROVED,
    approval_id: str = "ap-1",
) -> ApprovalRecord:
    return ApprovalRecord(
        id=approval_id,
        incident_id=action.incident_id,
        action=action.action,
        action_hash=action_hash(action.incident_id, action.action, POLICY),
        risk=action.risk,
        required_approvers=required,
        approver_group="soc-primary",
        requester="garrison-agent",
        policy_version=POLICY,
        status=status,
        decisions=[
            ApprovalDecision(user=who, decision="approve", channel="api", at=AT)
            for who in approvers
        ],
        created_at=AT,
        deadline=AT + timedelta(minutes=30),
    )


def incident(
    incident_id: str,
    *,
    closed: bool = True,
    uids: tuple[str, ...] = ("a1",),
    actions: tuple[ActionRecord, ...] = (),
    approvals: tuple[ApprovalRecord, ...] = (),
    ticket: TicketStatus | None = TicketStatus.CLOSED,
) -> IncidentFacts:
    return IncidentFacts(
        record=IncidentRecord(
            id=incident_id,
            group_key=f"k:{incident_id}",
            title="t",
            status=IncidentStatus.CLOSED if closed else IncidentStatus.RESPONDING,
            opened_at=AT,
        ),
        uids=list(uids),
        actions=list(actions),
        approvals=list(approvals),
        ticket=None
        if ticket is None
        else TicketRecord(incident_id=incident_id, ticket_id="GAR-1", status=ticket, opened_at=AT),
    )


def change(op: str, target: str) -> StateChange:
    return StateChange(op=op, target=target, at=AT)


def executed_audit(facts: dict[str, IncidentFacts]) -> list[AuditRecord]:
    """One `response.<kind>.succeeded` entry per executed action, as the worker writes them."""
    entries = [
        (i, a) for i, f in facts.items() for a in f.actions if a.status is ActionStatus.SUCCEEDED
    ]
    return [
        AuditRecord(
            seq=n + 1,
            at=AT,
            prev_hash="0",
            hash=str(n),
            type=f"response.{a.kind.value}.succeeded",
            actor="garrison-worker",
            outcome="applied",
            source="test",
            incident_id=i,
            target=a.target,
        )
        for n, (i, a) in enumerate(entries)
    ]


def run(
    incidents: list[IncidentFacts],
    *,
    journals: dict[str, list[StateChange]] | None = None,
    workflows: dict[str, WorkflowExecutionStatus] | None = None,
    audit: list[AuditRecord] | None = None,
    chain_ok: bool = True,
    acknowledged: set[str] | None = None,
) -> RunReport:
    by_id = {i.record.id: i for i in incidents}
    default_journals = {
        i: [change("open_ticket", i)]
        + [change(a.kind.value, a.target) for a in f.actions if a.status is ActionStatus.SUCCEEDED]
        for i, f in by_id.items()
        if f.ticket is not None
    }
    default_workflows = {
        workflow_id(i): WorkflowExecutionStatus.COMPLETED
        if f.record.status is IncidentStatus.CLOSED
        else WorkflowExecutionStatus.RUNNING
        for i, f in by_id.items()
    }
    facts = RunFacts(
        incidents=by_id,
        workflows=default_workflows if workflows is None else workflows,
        journals=default_journals if journals is None else journals,
        audit=executed_audit(by_id) if audit is None else audit,
        audit_verification=AuditVerification(
            ok=chain_ok, entries=1, reason="ok" if chain_ok else "seq 7: hash mismatch"
        ),
        backlog=0,
    )
    return judge(facts, THRESHOLD, acknowledged)


def clean() -> list[IncidentFacts]:
    done = isolation("s-1")
    waiting = isolation("s-2", approval_id="ap-2", status=ActionStatus.PENDING)
    pending = approval(waiting, (), status=ApprovalStatus.PENDING, approval_id="ap-2")
    return [
        incident("s-1", uids=("a1", "a2"), actions=(done,), approvals=(approval(done),)),
        incident("s-2", closed=False, uids=("a3",), approvals=(pending,), ticket=TicketStatus.OPEN),
    ]


def test_a_clean_run_has_no_problems() -> None:
    report = run(clean(), acknowledged={"a1", "a2", "a3"})
    assert report.problems == []
    assert (report.closed, report.waiting_for_human, report.actions_executed) == (1, 1, 1)
    assert report.alerts_stored == 3 and report.vendor_changes == 1 and report.tickets == 2


def test_a_second_state_change_at_the_vendor_is_an_effective_once_violation() -> None:
    journals = {
        "s-1": [change("open_ticket", "s-1"), change("isolate_host", "WS1")] * 2,
        "s-2": [change("open_ticket", "s-2")],
    }
    problems = run(clean(), journals=journals).problems
    assert "I1: s-1 isolate_host WS1: 2 changes" in problems
    assert "I1: s-1: 2 tickets opened at the vendor" in problems


def test_a_vendor_change_no_executed_action_accounts_for_is_refused() -> None:
    journals = {
        "s-1": [change("open_ticket", "s-1"), change("isolate_host", "WS1")],
        "s-2": [change("open_ticket", "s-2"), change("disable_account", "corp\\bob")],
        "s-9": [change("isolate_host", "WS9")],
    }
    problems = run(clean(), journals=journals).problems
    assert any(p.startswith("I2: s-2: 1 disable_account changes") for p in problems), problems
    assert "vendor changes for s-9, unknown to the store" in problems


def test_an_action_without_a_valid_approval_is_refused() -> None:
    above = isolation("u-1", risk=THRESHOLD + 1, approval_id=None)
    short = isolation("u-2")
    twice = isolation("u-3")
    denied = isolation("u-4")
    other = isolation("u-5")
    forged = approval(other).model_copy(update={"action_hash": "f" * 64})
    incidents = [
        incident("u-1", actions=(above,)),
        incident("u-2", actions=(short,), approvals=(approval(short, required=2),)),
        incident(
            "u-3",
            actions=(twice,),
            approvals=(approval(twice, ("alice", " Alice "), required=2),),
        ),
        incident(
            "u-4", actions=(denied,), approvals=(approval(denied, status=ApprovalStatus.DENIED),)
        ),
        incident("u-5", actions=(other,), approvals=(forged,)),
        incident("u-6", actions=(isolation("u-6", approval_id="nowhere"),)),
    ]
    problems = run(incidents).problems
    for incident_id, why in [
        ("u-1", f"risk {THRESHOLD + 1} without approval"),
        ("u-2", "1 distinct approvers of 2 required"),
        ("u-3", "1 distinct approvers of 2 required"),
        ("u-4", "is denied"),
        ("u-5", "bound to another action hash"),
        ("u-6", "approval nowhere not found"),
    ]:
        assert any(p.startswith(f"I2: {incident_id} ") and why in p for p in problems), (
            incident_id,
            problems,
        )


def test_lost_duplicated_and_unacknowledged_alerts_are_named() -> None:
    incidents = [incident("s-1", uids=("a1", "a2")), incident("s-3", uids=("a2", "x9"))]
    problems = run(incidents, acknowledged={"a1", "a2", "a7"}).problems
    assert "I3: alert a2 stored 2 times" in problems
    assert "I3: 1 acknowledged alerts not stored, e.g. ['a7']" in problems
    assert "I3: 1 stored alerts never acknowledged: ['x9']" in problems


def test_an_incident_neither_closed_nor_waiting_or_a_failed_workflow_is_named() -> None:
    stuck = incident("s-4", closed=False, ticket=TicketStatus.OPEN)
    workflows = {
        workflow_id("s-1"): WorkflowExecutionStatus.FAILED,
        workflow_id("s-2"): WorkflowExecutionStatus.RUNNING,
        workflow_id("s-4"): WorkflowExecutionStatus.RUNNING,
        workflow_id("s-8"): WorkflowExecutionStatus.COMPLETED,
    }
    incidents = [*clean(), stuck, incident("s-5")]
    problems = run(incidents, workflows=workflows).problems
    assert "s-1: workflow ended FAILED" in problems
    assert any(p.startswith("s-4: responding with 0 pending") for p in problems), problems
    assert "s-5: no workflow was ever started" in problems
    assert f"workflow {workflow_id('s-8')} has no incident in the store" in problems


def test_a_closed_incident_needs_its_one_ticket_closed() -> None:
    incidents = [incident("t-1", ticket=TicketStatus.OPEN), incident("t-2", ticket=None)]
    problems = run(incidents).problems
    assert "t-1: closed, its ticket GAR-1 open" in problems
    assert "t-2: closed without a ticket" in problems


def test_a_broken_chain_and_an_unaudited_or_twice_audited_action_are_named() -> None:
    incidents = clean()
    assert "I6: audit chain: seq 7: hash mismatch" in run(incidents, chain_ok=False).problems
    missing = run(incidents, audit=[]).problems
    assert "I6: s-1 isolate_host WS1: 0 audit entries of its execution" in missing
    entries = executed_audit({i.record.id: i for i in incidents})
    doubled = run(incidents, audit=entries * 2).problems
    assert "I6: s-1 isolate_host WS1: 2 audit entries of its execution" in doubled
