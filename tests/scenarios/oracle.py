"""`verify_run()`: the invariants of `security-scenarios.md` §5 checked after a scenario, from
what each party recorded rather than from what the scenario believes it did.

- the store (incidents, alerts, the action ledger, approvals, tickets, the audit chain and its
  anchor), read through `Store` on the deployment's own settings;
- the vendors' ledgers: the journaled twins' state changes, one file per incident
  (`backends.py`), so a transition is attributed to its incident;
- Temporal visibility: every workflow on the run's triage task queue, with its status;
- the sender's books (`load.Acks`): which alert uids were acknowledged with a 202.

Checked (each failure is one line in `RunReport.problems`):
- every incident is closed (its workflow completed) or waits for a human (an approval pending in
  the store, its workflow running); no workflow failed, was terminated or timed out; every
  incident has a workflow and every workflow an incident;
- I1: per incident, every (operation, target) changed state at the vendor at most once, and the
  incident has at most one ticket there;
- I2: a vendor change of an incident is backed by an executed action of that kind in the ledger;
  an action in the ledger that carries an approval was approved, by as many distinct people
  (none of them the requester) as it required, bound to that action's hash; one above the
  policy's threshold carries an approval;
- I3: the alerts acknowledged are the alerts stored (no loss, nothing unacknowledged), each stored
  once in one incident, and none waits undelivered in the dispatch outbox;
- one ticket per incident in the store, closed when the incident is;
- I6: the audit chain (and its anchor) verifies, and every executed action has exactly one
  `response.<kind>.succeeded` entry.

`check_run` returns the report; `verify_run` also raises AssertionError listing the problems.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from temporalio.client import Client, WorkflowExecutionStatus

from orchestrator.backends import workflow_id
from orchestrator.composition import open_store
from orchestrator.settings import GarrisonSettings
from orchestrator.store.records import (
    ActionRecord,
    ActionStatus,
    ApprovalRecord,
    ApprovalStatus,
    AuditRecord,
    AuditVerification,
    IncidentRecord,
    TicketRecord,
    TicketStatus,
)
from orchestrator.store.repository import Store
from tools.actions import ActionKind, action_hash
from tools.journal import FileJournal, StateChange
from tools.models import IncidentStatus

ACTION_OPS = frozenset(kind.value for kind in ActionKind)
EXECUTED = frozenset({ActionStatus.SUCCEEDED, ActionStatus.ROLLED_BACK})
BAD_ENDINGS = frozenset(
    {
        WorkflowExecutionStatus.FAILED,
        WorkflowExecutionStatus.TERMINATED,
        WorkflowExecutionStatus.CANCELED,
        WorkflowExecutionStatus.TIMED_OUT,
    }
)


@dataclass(frozen=True)
class RunEvidence:
    settings: GarrisonSettings  # the deployment's: its store and its task-queue prefix
    scope: str  # ingestion scope: every incident id of the run starts with it
    journal_dir: Path
    temporal: Client
    threshold: int  # the policy's: above it an action needs an approval
    acknowledged: set[str] | None = None  # uids answered 202; None skips the no-loss check


@dataclass
class RunReport:
    incidents: int = 0
    closed: int = 0
    waiting_for_human: int = 0
    workflows: int = 0
    alerts_stored: int = 0
    alerts_acknowledged: int | None = None
    actions_executed: int = 0
    approvals: Counter[str] = field(default_factory=Counter)  # by status
    vendor_changes: int = 0
    tickets: int = 0
    audit_entries: int = 0
    triaged_at: dict[str, datetime] = field(default_factory=dict)  # incident -> first triage
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        return (
            f"{self.incidents} incidents ({self.closed} closed, {self.waiting_for_human} waiting"
            f" for a human), {self.workflows} workflows, {self.alerts_stored} alerts stored"
            f" ({self.alerts_acknowledged} acknowledged), {self.actions_executed} actions"
            f" executed, approvals {dict(self.approvals)}, {self.vendor_changes} vendor changes,"
            f" {self.tickets} tickets, {self.audit_entries} audit entries;"
            f" {len(self.problems)} problems"
        )


@dataclass
class IncidentFacts:
    """One incident as the store has it."""

    record: IncidentRecord
    uids: list[str]
    actions: list[ActionRecord] = field(default_factory=list)
    approvals: list[ApprovalRecord] = field(default_factory=list)
    ticket: TicketRecord | None = None


@dataclass
class RunFacts:
    """Everything `judge` reads: gathered by `check_run`, or built by hand in the oracle's own
    tests."""

    incidents: dict[str, IncidentFacts]
    workflows: dict[str, WorkflowExecutionStatus]  # workflow id -> status of its latest run
    journals: dict[str, list[StateChange]]  # incident id -> its vendor state changes
    audit: list[AuditRecord]
    audit_verification: AuditVerification
    backlog: int  # alerts committed, not yet signalled


async def verify_run(evidence: RunEvidence) -> RunReport:
    report = await check_run(evidence)
    if report.problems:
        shown = "\n".join(report.problems[:40])
        more = len(report.problems) - 40
        raise AssertionError(
            f"{report.summary()}\n{shown}" + (f"\n... and {more} more" if more > 0 else "")
        )
    return report


async def check_run(evidence: RunEvidence) -> RunReport:
    store = await open_store(evidence.settings)
    try:
        incidents = await _incidents(store, evidence.scope)
        audit = await store.audit_entries()
        verification = await store.verify_audit(_anchor_source(store))
        backlog = await store.intake.backlog()
    finally:
        await store.close()
    facts = RunFacts(
        incidents=incidents,
        workflows=await workflow_statuses(evidence.temporal, _triage_queue(evidence.settings)),
        journals=_journals(evidence.journal_dir),
        audit=audit,
        audit_verification=verification,
        backlog=backlog,
    )
    return judge(facts, evidence.threshold, evidence.acknowledged)


def judge(facts: RunFacts, threshold: int, acknowledged: set[str] | None) -> RunReport:
    """The invariants over gathered facts (pure)."""
    report = RunReport(
        incidents=len(facts.incidents),
        workflows=len(facts.workflows),
        audit_entries=facts.audit_verification.entries,
    )
    if not facts.audit_verification.ok:
        report.problems.append(f"I6: audit chain: {facts.audit_verification.reason}")
    if facts.backlog:
        report.problems.append(f"I3: {facts.backlog} alerts committed but never signalled")
    _check_lifecycles(report, facts.incidents, facts.workflows)
    _check_alerts(report, facts.incidents, acknowledged)
    _check_vendor(report, facts.incidents, facts.journals)
    _check_permits(report, facts.incidents, threshold)
    _check_tickets(report, facts.incidents, facts.journals)
    _check_audit(report, facts.incidents, facts.audit)
    return report


async def _incidents(store: Store, scope: str) -> dict[str, IncidentFacts]:
    records = [
        i for i in await store.list_incidents(limit=10_000_000) if i.id.startswith(f"{scope}-")
    ]
    found: dict[str, IncidentFacts] = {}
    for record in records:
        found[record.id] = IncidentFacts(
            record=record,
            uids=[a.uid for a in await store.alerts_for(record.id)],
            actions=await store.actions_for(record.id),
            approvals=await store.list_approvals(incident_id=record.id),
            ticket=await store.tickets.for_incident(record.id),
        )
    return found


def _anchor_source(store: Store) -> Any:
    """The store's anchor when it can be read back (a file), else None (the chain alone)."""
    anchor = store.anchor
    return anchor if anchor is not None and hasattr(anchor, "entries") else None


def _triage_queue(settings: GarrisonSettings) -> str:
    return f"{settings.temporal.task_queue_prefix}-triage"


async def workflow_statuses(client: Client, task_queue: str) -> dict[str, WorkflowExecutionStatus]:
    """Workflow id -> status of its latest run, for every workflow on the task queue."""
    latest: dict[str, tuple[datetime, WorkflowExecutionStatus]] = {}
    async for execution in client.list_workflows(f'TaskQueue="{task_queue}"'):
        status = execution.status or WorkflowExecutionStatus.RUNNING
        seen = latest.get(execution.id)
        if seen is None or execution.start_time > seen[0]:
            latest[execution.id] = (execution.start_time, status)
    return {wid: status for wid, (_, status) in latest.items()}


def _journals(folder: Path) -> dict[str, list[StateChange]]:
    return {p.stem: FileJournal(p).changes() for p in sorted(folder.glob("*.jsonl"))}


def _check_lifecycles(
    report: RunReport,
    incidents: dict[str, IncidentFacts],
    statuses: dict[str, WorkflowExecutionStatus],
) -> None:
    known = {workflow_id(i) for i in incidents}
    for wid in sorted(set(statuses) - known):
        report.problems.append(f"workflow {wid} has no incident in the store")
    for incident_id, incident in incidents.items():
        status = statuses.get(workflow_id(incident_id))
        pending = [a for a in incident.approvals if a.status is ApprovalStatus.PENDING]
        if status is None:
            report.problems.append(f"{incident_id}: no workflow was ever started")
        elif status in BAD_ENDINGS:
            report.problems.append(f"{incident_id}: workflow ended {status.name}")
        elif incident.record.status is IncidentStatus.CLOSED:
            report.closed += 1
            if status is not WorkflowExecutionStatus.COMPLETED:
                report.problems.append(
                    f"{incident_id}: closed in the store, workflow {status.name}"
                )
        elif pending and status is WorkflowExecutionStatus.RUNNING:
            report.waiting_for_human += 1
        else:
            report.problems.append(
                f"{incident_id}: {incident.record.status.value} with {len(pending)} pending"
                f" approvals, workflow {status.name}: neither closed nor waiting for a human"
            )


def _check_alerts(
    report: RunReport, incidents: dict[str, IncidentFacts], acknowledged: set[str] | None
) -> None:
    stored = Counter(uid for incident in incidents.values() for uid in incident.uids)
    report.alerts_stored = sum(stored.values())
    for uid, count in stored.items():
        if count > 1:
            report.problems.append(f"I3: alert {uid} stored {count} times")
    if acknowledged is None:
        return
    report.alerts_acknowledged = len(acknowledged)
    lost = sorted(acknowledged - set(stored))
    extra = sorted(set(stored) - acknowledged)
    if lost:
        report.problems.append(f"I3: {len(lost)} acknowledged alerts not stored, e.g. {lost[:3]}")
    if extra:
        report.problems.append(f"I3: {len(extra)} stored alerts never acknowledged: {extra[:3]}")


def _check_vendor(
    report: RunReport, incidents: dict[str, IncidentFacts], journals: dict[str, list[StateChange]]
) -> None:
    for incident_id, changes in journals.items():
        incident = incidents.get(incident_id)
        if incident is None:
            report.problems.append(f"vendor changes for {incident_id}, unknown to the store")
            continue
        moves = [c for c in changes if c.op in ACTION_OPS]
        report.vendor_changes += len(moves)
        for (op, target), count in Counter((c.op, c.target) for c in moves).items():
            if count > 1:
                report.problems.append(f"I1: {incident_id} {op} {target}: {count} changes")
        backed = Counter(a.kind.value for a in incident.actions if a.status in EXECUTED)
        backed.update(
            a.inverse.kind.value
            for a in incident.actions
            if a.status is ActionStatus.ROLLED_BACK and a.inverse is not None
        )
        for op, count in Counter(c.op for c in moves).items():
            if count > backed[op]:
                report.problems.append(
                    f"I2: {incident_id}: {count} {op} changes at the vendor, {backed[op]}"
                    " executed in the ledger"
                )


def _check_permits(report: RunReport, incidents: dict[str, IncidentFacts], threshold: int) -> None:
    for incident_id, incident in incidents.items():
        approvals = {a.id: a for a in incident.approvals}
        report.approvals.update(a.status.value for a in incident.approvals)
        for action in incident.actions:
            if action.status in EXECUTED:
                report.actions_executed += 1
            what = f"{incident_id} {action.kind.value} {action.target}"
            if action.approval_id is None:
                if action.risk > threshold:
                    report.problems.append(f"I2: {what}: risk {action.risk} without approval")
                continue
            approval = approvals.get(action.approval_id)
            if approval is None:
                report.problems.append(f"I2: {what}: approval {action.approval_id} not found")
                continue
            report.problems += [f"I2: {what}: {p}" for p in _approval_problems(action, approval)]


def _approval_problems(action: ActionRecord, approval: ApprovalRecord) -> list[str]:
    problems: list[str] = []
    if approval.status is not ApprovalStatus.APPROVED:
        problems.append(f"approval {approval.id} is {approval.status.value}")
    if approval.action != action.action:
        problems.append(f"approval {approval.id} is for another action")
    expected = action_hash(action.incident_id, action.action, approval.policy_version)
    if approval.action_hash != expected:
        problems.append(f"approval {approval.id} is bound to another action hash")
    approvers = {_person(d.user) for d in approval.decisions if d.decision == "approve"} - {
        _person(approval.requester)
    }
    if len(approvers) < approval.required_approvers:
        problems.append(
            f"approval {approval.id}: {len(approvers)} distinct approvers of"
            f" {approval.required_approvers} required"
        )
    return problems


def _person(name: str) -> str:
    return " ".join(name.split()).casefold()


def _check_tickets(
    report: RunReport, incidents: dict[str, IncidentFacts], journals: dict[str, list[StateChange]]
) -> None:
    for incident_id, incident in incidents.items():
        opened = [c for c in journals.get(incident_id, []) if c.op == "open_ticket"]
        report.tickets += len({c.target for c in opened})
        if len(opened) > 1:
            report.problems.append(f"I1: {incident_id}: {len(opened)} tickets opened at the vendor")
        ticket = incident.ticket
        if incident.record.status is not IncidentStatus.CLOSED:
            continue
        if ticket is None or not opened:
            report.problems.append(f"{incident_id}: closed without a ticket")
        elif ticket.status is not TicketStatus.CLOSED:
            report.problems.append(f"{incident_id}: closed, its ticket {ticket.ticket_id} open")


def _check_audit(
    report: RunReport, incidents: dict[str, IncidentFacts], audit: Iterable[AuditRecord]
) -> None:
    succeeded: Counter[tuple[str | None, str, str | None]] = Counter()
    for entry in audit:
        if entry.incident_id in incidents:
            succeeded[(entry.incident_id, entry.type, entry.target)] += 1
            if entry.type == "agent.triage" and entry.incident_id not in report.triaged_at:
                report.triaged_at[entry.incident_id] = entry.at
    for incident_id, incident in incidents.items():
        for action in incident.actions:
            if action.status not in EXECUTED:
                continue
            count = succeeded[
                (incident_id, f"response.{action.kind.value}.succeeded", action.target)
            ]
            if count != 1:
                report.problems.append(
                    f"I6: {incident_id} {action.kind.value} {action.target}: {count} audit"
                    " entries of its execution"
                )
