"""After the chaos run (`bench/chaos.py`): read what every party recorded and compute the figures
(`chaos_figures.py`): the store (incidents, the action ledger, tickets, approvals, the audit
log's times), the emulators (`/_ledger`, Jira's comments), Temporal's visibility (every workflow
of the run's task queues), and `verify_run()`'s report over the store and the vendors' changes
attributed to their incidents (written as the journals the oracle reads).
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

from temporalio.client import Client, WorkflowExecutionStatus

from bench.chaos_deploy import ChaosStack, Emulators, jira_comments, ledger
from bench.chaos_figures import (
    Execution,
    VendorChange,
    attribute,
    change_counts,
    comment_figures,
    executions,
    recovery,
    ticket_journals,
    ticket_opens,
    vendor_changes,
)
from bench.chaos_kills import SERVER, ChaosLog
from bench.chaos_operator import OPERATOR, Operator
from bench.chaos_traffic import Sent
from orchestrator.backends import workflow_id
from orchestrator.composition import open_store
from orchestrator.policy.model import load_policy
from orchestrator.store.records import ActionRecord, ApprovalStatus, TicketRecord
from orchestrator.store.repository import Store
from tests.scenarios.oracle import BAD_ENDINGS, RunEvidence, check_run, workflow_statuses
from tools.journal import FileJournal
from tools.models import Environment

QUEUES = ("triage", "agents", "actions")


async def gather(
    stack: ChaosStack,
    emulators: Emulators,
    client: Client,
    scope: str,
    sent: Sent,
    log: ChaosLog,
    operator: Operator,
    started: float,
) -> dict[str, Any]:
    store = await open_store(stack.settings())
    try:
        ours = [
            i for i in await store.list_incidents(limit=10_000_000) if i.id.startswith(f"{scope}-")
        ]
        actions = {i.id: await store.actions_for(i.id) for i in ours}
        tickets = {i.id: await store.tickets.for_incident(i.id) for i in ours}
        pending = {a.incident_id for a in await store.list_approvals(ApprovalStatus.PENDING)}
        progress = [e.at.timestamp() for e in await store.audit_entries()]
        approvals = await _approvals(store, [i.id for i in ours], stack.policy_file)
    finally:
        await store.close()
    ledgers = {vendor: await ledger(url) for vendor, url in emulators.urls.items()}
    changes = vendor_changes(ledgers)
    duplicates, journals = await _duplicates(
        emulators, changes, actions, tickets, operator.releases
    )
    journals.pop(OPERATOR, None)  # the operator's releases are no incident's
    stack.journal_dir.mkdir(parents=True, exist_ok=True)
    for incident, entries in journals.items():
        journal = FileJournal(stack.journal_dir / f"{incident}.jsonl")
        for entry in entries:
            journal.append(entry)
    report = await check_run(
        RunEvidence(
            settings=stack.settings(),
            scope=scope,
            journal_dir=stack.journal_dir,
            temporal=client,
            threshold=load_policy(stack.policy_file).threshold,
            acknowledged=sent.uids,
        )
    )
    kills = _kills(log, progress, started)
    return {
        "incidents": {
            "started": report.incidents,
            "closed": report.closed,
            "waiting_for_human": report.waiting_for_human,
            "actions_executed": report.actions_executed,
        },
        "approvals": approvals,
        "kills": kills,
        "recovery_s": _recovery_summary(kills["events"]),
        "died_alone": [{**d, "t": round(d["at"] - started, 1)} for d in log.died_alone],
        "start_failures": {
            "count": len(log.start_failures),
            "examples": [{**f, "t": round(f["at"] - started, 1)} for f in log.start_failures[:3]],
        },
        "kill_errors": log.errors,
        "vendor_faults": [{**f, "t": round(f["at"] - started, 1)} for f in log.faults],
        "effective_vendor_changes": {
            "total": len(changes),
            "by_vendor": change_counts(changes),
            "answers": {vendor: ledger["answers"] for vendor, ledger in ledgers.items()},
        },
        "duplicates": duplicates,
        "operator": {
            "releases": dict(Counter(r.kind.value for r in operator.releases)),
            "failures": len(operator.failures),
            "failure_examples": operator.failures[:3],
        },
        "workflows": await _workflows(client, stack.settings().temporal.task_queue_prefix, pending),
        "verify_run": report.summary(),
        "problems": report.problems[:30],
    }


async def _duplicates(
    emulators: Emulators,
    changes: list[VendorChange],
    actions: dict[str, list[ActionRecord]],
    tickets: dict[str, TicketRecord | None],
    releases: list[Execution],
) -> tuple[dict[str, Any], dict[str, list[Any]]]:
    inventory_file = Path(emulators.env["GARRISON_INVENTORY_FILE"])
    text = await asyncio.to_thread(inventory_file.read_text, encoding="utf-8")
    inventory = Environment.model_validate_json(text)
    done = sorted([*executions(actions, inventory), *releases], key=lambda e: e.at)
    attribution = attribute(changes, done)
    opens = ticket_opens(changes)
    keys = {t.ticket_id for t in tickets.values() if t is not None}
    keys |= {c.target.split("#")[0] for c in changes if c.op == "add_comment"}
    comments = comment_figures(
        changes, await jira_comments(emulators.urls["jira"], emulators.env, sorted(keys))
    )
    twice = {i: len(c) for i, c in opens.items() if len(c) > 1}
    journals = dict(attribution.journals)
    for incident, entries in ticket_journals(opens).items():
        journals.setdefault(incident, []).extend(entries)
    figures = {
        "changes": len(attribution.duplicates),
        "tickets": sum(n - 1 for n in twice.values()),
        "comments": comments["duplicates"],
        "change_examples": [
            f"{c.vendor} {c.op} {c.target} at {c.at.isoformat()}"
            for c in attribution.duplicates[:5]
        ],
        "ticket_examples": sorted(twice)[:5],
        "tickets_opened": len(opens),
        "comment_figures": comments,
    }
    return figures, journals


def _kills(log: ChaosLog, progress: list[float], started: float) -> dict[str, Any]:
    events = []
    for kill in log.kills:
        if "back_at" not in kill:
            names = kill["target"].split("+") if kill["kind"] == "writers" else [kill["target"]]
            kill = {**kill, "back_at": log.back_at(names or [SERVER], kill["at"])}
        events.append(kill)
    shown = [
        {
            "t": round(k["at"] - started, 1),
            **{n: v for n, v in k.items() if n not in ("at", "back_at")},
        }
        for k in recovery(events, progress)
    ]
    return {"by_kind": dict(Counter(k["kind"] for k in log.kills)), "events": shown}


def _recovery_summary(events: list[dict[str, Any]]) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    for kind in sorted({e["kind"] for e in events}):
        values = [
            e["recovery_s"] for e in events if e["kind"] == kind and e["recovery_s"] is not None
        ]
        backs = [e["back_s"] for e in events if e["kind"] == kind and e["back_s"] is not None]
        summary[kind] = {
            "recovery_median": round(statistics.median(values), 2) if values else None,
            "recovery_max": max(values, default=None),
            "back_median": round(statistics.median(backs), 2) if backs else None,
            "back_max": max(backs, default=None),
            "unrecovered": sum(1 for e in events if e["kind"] == kind and e["recovery_s"] is None),
        }
    return summary


async def _approvals(store: Store, incidents: list[str], policy_file: Path) -> dict[str, Any]:
    """By status; and the requests that expired although every decision they needed had been
    claimed (recorded by the approval service) before they expired: decisions made in time that
    an outage delivered late."""
    waits: dict[str, float] = {}
    for tier in load_policy(policy_file).tiers.values():
        waits[tier.approver_group] = min(
            waits.get(tier.approver_group, tier.escalation_wait_s), tier.escalation_wait_s
        )
    statuses: Counter[str] = Counter()
    in_time: list[str] = []
    for incident in incidents:
        for approval in await store.list_approvals(incident_id=incident):
            statuses[approval.status.value] += 1
            if approval.status is not ApprovalStatus.EXPIRED:
                continue
            expires = approval.deadline + timedelta(seconds=waits.get(approval.approver_group, 0))
            claims = await store.decisions.claims_for(approval.id)
            deciders = {c.user for c in claims if c.at < expires and c.decision == "approve"}
            if len(deciders) >= approval.required_approvers:
                in_time.append(approval.id)
    return {
        "by_status": dict(statuses),
        "expired_with_decisions_in_time": len(in_time),
        "examples": in_time[:5],
    }


async def settle_workflows(
    client: Client, stack: ChaosStack, timeout_s: float, poll_s: float = 2.0
) -> float | None:
    """Seconds until no workflow of the run runs without a pending approval to wait for (a
    closed incident's workflow may still be delivering its ticket's last comments); None if
    some still do after `timeout_s`."""
    started = time.monotonic()
    prefix = stack.settings().temporal.task_queue_prefix
    while time.monotonic() - started < timeout_s:
        store = await open_store(stack.settings())
        try:
            pending = {a.incident_id for a in await store.list_approvals(ApprovalStatus.PENDING)}
        finally:
            await store.close()
        if (await _workflows(client, prefix, pending))["stuck"] == 0:
            return time.monotonic() - started
        await asyncio.sleep(poll_s)
    return None


async def _workflows(client: Client, prefix: str, pending: set[str]) -> dict[str, Any]:
    """Every workflow of the run's queues: by status, those that ended badly, and those still
    running without a pending approval to wait for (stuck)."""
    statuses: dict[str, WorkflowExecutionStatus] = {}
    for queue in QUEUES:
        statuses |= await workflow_statuses(client, f"{prefix}-{queue}")
    waiting = {workflow_id(i) for i in pending}
    failed = sorted(f"{w}: {s.name}" for w, s in statuses.items() if s in BAD_ENDINGS)
    stuck = sorted(
        w for w, s in statuses.items() if s is WorkflowExecutionStatus.RUNNING and w not in waiting
    )
    return {
        "total": len(statuses),
        "by_status": dict(Counter(s.name for s in statuses.values())),
        "failed": len(failed),
        "stuck": len(stuck),
        "failed_examples": failed[:5],
        "stuck_examples": stuck[:5],
    }
