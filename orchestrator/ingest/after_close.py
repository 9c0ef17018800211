"""Late alerts: what the dispatcher does with alerts stored for an incident whose workflow has
already closed (a sender's re-sends, a detection that fires again, the rest of a storm).

They are members of that incident already (ingestion placed them there, `pipeline.py`): they are
never moved to a second incident. Each batch is audited once, `incident.alerts_after_close`, with
its outcome, and so shows on the incident (the store, `GET /api/incidents/{id}`). By the policy's
`ingest.after_close` (`reopen`, or `storm_reopen` for a storm incident) the batch either only
attaches, or reopens the incident: the store's incident is open again, `incident.reopened` is
audited, and a new run of its workflow starts under the same workflow id (id reuse is allowed
only here, for a workflow that has closed) from a carry of what the closed run decided
(`reopen.py`), so the new run notes the late alerts on the ticket once, re-triages, and runs one
more playbook pass that recalls every earlier decision instead of repeating it.

The alerts that count are all those received since the incident closed (this batch and the ones
attached before it), against those its runs saw: `on_new_entity` reopens when they name a host or
a person the incident did not have, `on_new_entity_or_severity` also when one is more severe than
its triage. A reopen is bounded: at most one per incident per `reopen_interval_s`; what would
reopen it sooner attaches (audited as `held`) and counts at the next reopen.

Crash safety: the store's `closed -> open` update decides who audits a reopen; the run is started
after it, and a reopen whose run never started (the process died in between) is found again from
the audit (reopened after its last close, and open in the store) and started by the next pass.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.common import WorkflowIDReusePolicy

from orchestrator.backends import workflow_id
from orchestrator.ingest.grouping import is_system_account, user_key
from orchestrator.ingest.pipeline import is_storm_incident
from orchestrator.ingest.reopen import CannotReopen, reopen_carry
from orchestrator.models import AlertsAdded, IncidentResult, IncidentWorkflowInput
from orchestrator.policy.model import AfterClose, ReopenWhen
from orchestrator.store.intake import Unsignalled
from orchestrator.store.records import AuditEvent, AuditRecord, IncidentRecord
from orchestrator.store.repository import Store
from orchestrator.workflows.incident import IncidentWorkflow
from tools.models import Alert, IncidentStatus, Severity
from tools.names import host_key

log = logging.getLogger("garrison.ingest")
AFTER_CLOSE = "incident.alerts_after_close"
REOPENED = "incident.reopened"
CLOSED = "incident.closed"
ACTOR = "garrison-dispatcher"
SOURCE = "ingest:dispatcher"
LISTED = 20  # alert uids and entities named in one audit entry
SIGNAL_BATCH = 1_000  # AlertsAdded carries at most this many uids


class Outcome(StrEnum):
    ATTACHED = "attached"  # stored as members, audited: no new pass
    HELD = "held"  # would reopen, but the incident reopened within `reopen_interval_s`
    REOPENED = "reopened"  # another triage and response pass started


@dataclass(frozen=True)
class Decision:
    outcome: Outcome
    reason: str
    new_entities: tuple[str, ...] = ()


@dataclass(frozen=True)
class Reopens:
    """What the audit log says about an incident's reopens."""

    count: int = 0
    last_at: datetime | None = None
    pending: bool = False  # reopened after its last close, still open: its run may not exist

    @classmethod
    def of(cls, entries: Sequence[AuditRecord], incident: IncidentRecord) -> Reopens:
        reopens = [e for e in entries if e.type == REOPENED]
        if not reopens:
            return cls()
        last_close = max((e.seq for e in entries if e.type == CLOSED), default=0)
        open_again = incident.status is not IncidentStatus.CLOSED
        return cls(len(reopens), reopens[-1].at, open_again and reopens[-1].seq > last_close)


def before_facts(
    mode: ReopenWhen, rules: AfterClose, reopens: Reopens, now: datetime
) -> Decision | None:
    """The decision that needs no look at the alerts (never; too soon after the last reopen),
    else None."""
    if mode is ReopenWhen.NEVER:
        return Decision(Outcome.ATTACHED, "the policy only attaches late alerts to this incident")
    interval = timedelta(seconds=rules.reopen_interval_s)
    if reopens.last_at is not None and now - reopens.last_at < interval:
        return Decision(
            Outcome.HELD,
            f"reopened at {reopens.last_at:%Y-%m-%d %H:%M:%SZ}: at most one reopen per"
            f" {rules.reopen_interval_s} s, these alerts count at the next",
        )
    return None


def on_facts(mode: ReopenWhen, new_entities: list[str], raises: Severity | None) -> Decision:
    """Reopen for a new host or person (and, by policy, a higher severity); else attach."""
    if new_entities:
        shown = ", ".join(new_entities[:LISTED])
        return Decision(Outcome.REOPENED, f"new entities: {shown}", tuple(new_entities))
    if raises is not None and mode is ReopenWhen.ON_NEW_ENTITY_OR_SEVERITY:
        return Decision(Outcome.REOPENED, f"an alert of severity {raises.value}, above its triage")
    return Decision(Outcome.ATTACHED, "no host or person the incident did not already have")


def entities_of(alert: Alert) -> dict[str, str]:
    """Comparable key -> as named: the alert's host (first label) and person (not SYSTEM)."""
    found: dict[str, str] = {}
    host, user = alert.entities.host, alert.entities.user
    if host and host.strip():
        found[f"host:{host_key(host)}"] = f"host:{host.strip()}"
    if user and user.strip() and not is_system_account(user):
        found[f"user:{user_key(user)}"] = f"user:{user.strip()}"
    return found


def new_entities(after: list[Alert], before: list[Alert]) -> list[str]:
    known = {key for alert in before for key in entities_of(alert)}
    fresh: dict[str, str] = {}
    for alert in after:
        for key, named in entities_of(alert).items():
            if key not in known:
                fresh.setdefault(key, named)
    return list(fresh.values())


def raised_severity(after: list[Alert], triaged: Severity | None) -> Severity | None:
    """The highest severity among `after` when it is above the triage's."""
    if triaged is None or not after:
        return None
    top = max((a.severity for a in after), key=lambda s: s.rank)
    return top if top.rank > triaged.rank else None


@dataclass(frozen=True)
class Taken:
    fingerprints: list[str]  # handled: the dispatcher marks them signalled
    started: bool = False  # a new run was started under the incident's workflow id


class LateAlerts:
    """The dispatcher's handling of alerts for an incident whose workflow has closed."""

    def __init__(
        self,
        client: Client,
        store: Store,
        workflow_input: Callable[[IncidentRecord], IncidentWorkflowInput],
        task_queue: str,
    ) -> None:
        self._client = client
        self._store = store
        self._workflow_input = workflow_input
        self._task_queue = task_queue

    async def take(self, incident_id: str, rows: list[Unsignalled]) -> Taken:
        incident = await self._store.get_incident(incident_id)
        if incident is None:  # cannot happen: the incident commits with its first alert
            log.error("late alerts of unknown incident %s left unsignalled", incident_id)
            return Taken([])
        params = self._workflow_input(incident)
        rules = params.policy.ingest.after_close
        mode = rules.storm_reopen if is_storm_incident(incident) else rules.reopen
        reopens = Reopens()
        if mode is not ReopenWhen.NEVER:
            reopens = Reopens.of(await self._store.audit_entries(incident_id=incident_id), incident)
        if reopens.pending:
            decision = Decision(Outcome.REOPENED, "resuming a reopen whose run had not started")
        else:
            decision = before_facts(mode, rules, reopens, datetime.now(UTC))
        if decision is None or decision.outcome is Outcome.REOPENED:
            after, before = await self._split(incident, rows)
            if decision is None:
                raised = raised_severity(after, incident.severity)
                decision = on_facts(mode, new_entities(after, before), raised)
            if decision.outcome is Outcome.REOPENED:
                number = reopens.count if reopens.pending else reopens.count + 1
                refused = await self._reopen(
                    incident, params, rows, after, before, decision, number
                )
                if refused is None:
                    return Taken([row.fingerprint for row in rows], started=True)
                decision = Decision(Outcome.ATTACHED, f"not reopened: {refused}")
        await self._audit_batch(incident_id, rows, decision)
        return Taken([row.fingerprint for row in rows])

    async def _split(
        self, incident: IncidentRecord, rows: list[Unsignalled]
    ) -> tuple[list[Alert], list[Alert]]:
        """The incident's alerts received since it closed (this batch included), and the rest:
        those its runs saw."""
        late = {row.alert_uid for row in rows}
        if incident.closed_at is not None:
            late.update(await self._store.intake.received_since(incident.id, incident.closed_at))
        alerts = await self._store.alerts_for(incident.id)
        return [a for a in alerts if a.uid in late], [a for a in alerts if a.uid not in late]

    async def _reopen(
        self,
        incident: IncidentRecord,
        params: IncidentWorkflowInput,
        rows: list[Unsignalled],
        after: list[Alert],
        before: list[Alert],
        decision: Decision,
        number: int,
    ) -> str | None:
        """Start reopen `number`; the reason it cannot be, else None."""
        last = await self._last_result(incident.id)
        if isinstance(last, str):
            return last
        ticket = await self._store.tickets.for_incident(incident.id)
        ticket_id = (last.ticketing.ticket_id if last.ticketing else None) or (
            ticket.ticket_id if ticket else None
        )
        try:
            carry = reopen_carry(
                incident=incident,
                result=last,
                seen=before,
                ticket_id=ticket_id,
                ledger=await self._store.actions_for(incident.id),
                number=number,
            )
        except CannotReopen as refused:
            return str(refused)
        await self._audit_batch(incident.id, rows, decision)
        if await self._store.intake.reopen_incident(incident.id):  # this process reopened it
            await self._audit_reopened(incident.id, decision, number, len(after))
        await self._start(params.model_copy(update={"carry": carry}), [a.uid for a in after])
        log.warning(
            "incident %s reopened (%d): %d late alert(s), %s",
            incident.id,
            number,
            len(after),
            decision.reason,
        )
        return None

    async def _last_result(self, incident_id: str) -> IncidentResult | str:
        handle = self._client.get_workflow_handle_for(
            IncidentWorkflow.run, workflow_id(incident_id)
        )
        status = (await handle.describe()).status
        if status is not WorkflowExecutionStatus.COMPLETED:
            name = status.name if status is not None else "UNKNOWN"
            return f"its workflow's last run ended {name}, with nothing to resume from"
        return await handle.result()

    async def _start(self, params: IncidentWorkflowInput, uids: list[str]) -> None:
        """A new run under the closed workflow's id; later batches are plain signals to it."""
        batches = [uids[i : i + SIGNAL_BATCH] for i in range(0, len(uids), SIGNAL_BATCH)] or [[]]
        handle = await self._client.start_workflow(
            IncidentWorkflow.run,
            params,
            id=workflow_id(params.incident_id),
            task_queue=self._task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
            start_signal="alerts_added",
            start_signal_args=[AlertsAdded(alert_uids=batches[0])],
        )
        for batch in batches[1:]:
            await handle.signal("alerts_added", AlertsAdded(alert_uids=batch))

    async def _audit_batch(
        self, incident_id: str, rows: list[Unsignalled], decision: Decision
    ) -> None:
        uids = list(dict.fromkeys(row.alert_uid for row in rows))
        await self._store.append_audit(
            AuditEvent(
                type=AFTER_CLOSE,
                actor=ACTOR,
                incident_id=incident_id,
                target=incident_id,
                outcome=decision.outcome.value,
                source=SOURCE,
                detail={
                    "alerts": len(uids),
                    "uids": _listed(uids),
                    "new_entities": _listed(decision.new_entities),
                    "reason": decision.reason[:1_000],
                },
            )
        )

    async def _audit_reopened(
        self, incident_id: str, decision: Decision, number: int, alerts: int
    ) -> None:
        await self._store.append_audit(
            AuditEvent(
                type=REOPENED,
                actor=ACTOR,
                incident_id=incident_id,
                target=incident_id,
                outcome=f"reopen {number}",
                source=SOURCE,
                detail={
                    "reopen": number,
                    "late_alerts": alerts,
                    "new_entities": _listed(decision.new_entities),
                    "reason": decision.reason[:1_000],
                },
            )
        )


def _listed(values: Sequence[str]) -> str:
    text = ", ".join(values[:LISTED]) + (", ..." if len(values) > LISTED else "")
    return text[:4_000]
