"""`Dispatcher`: signal-with-start each incident's workflow with the alerts committed for it, then
mark them signalled. The store is the source of truth: the dispatcher reads what is committed and
not yet signalled, so an alert whose process died between commit and signal is signalled by the
next sweep of any process (`sweep_s`). A signal repeated after a crash is harmless: the workflow
counts an alert uid once.

A workflow is signalled at most once per `signal_gap_s` (the live setting `ingest.signal_gap_s`):
alerts that arrive for it sooner stay committed and unsignalled until the gap is over, then go in
one signal. Each signal to a waiting workflow costs a workflow task; a burst of alerts for one
incident costs one per gap, not one per pass. Starts are never deferred: a new incident reaches
triage at once. (Deferred rows stay at the head of the outbox: they delay other incidents' alerts
only when more than `PASS_LIMIT` of them wait, and by one gap at most.)

Starts refuse a duplicate id (`REJECT_DUPLICATE`): alerts for an incident whose workflow has
already closed never start a second run by accident. They stay members of that incident, and
`after_close.LateAlerts` audits them and, by policy, reopens the incident (the one place a new run
is started under a closed workflow's id, on purpose).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import UTC, datetime

from temporalio.client import Client
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from orchestrator.backends import workflow_id
from orchestrator.ingest.after_close import LateAlerts
from orchestrator.models import AlertsAdded, IncidentWorkflowInput
from orchestrator.observability.metrics import ALERT_DELIVERIES
from orchestrator.store.intake import Unsignalled
from orchestrator.store.records import IncidentRecord
from orchestrator.store.repository import Store
from orchestrator.workflows.incident import IncidentWorkflow

log = logging.getLogger("garrison.ingest")
SIGNAL_BATCH = 1_000  # AlertsAdded carries at most this many uids
PASS_LIMIT = 5_000  # alerts read per pass
PARALLEL_SIGNALS = 16
STARTED_MEMORY = 50_000  # incidents whose workflow this dispatcher started, signalled directly

WorkflowInputFor = Callable[[IncidentRecord], IncidentWorkflowInput]


class Dispatcher:
    def __init__(
        self,
        client: Client,
        store: Store,
        workflow_input: WorkflowInputFor,
        task_queue: str,
        *,
        sweep_s: float = 2.0,
        signal_gap_s: float = 0.0,
        paused: bool = False,
        coalesce_s: float = 0.05,
        incidents_prefix: str | None = None,
    ) -> None:
        """`incidents_prefix`: dispatch only incidents whose id starts with it. A simulation run
        dispatches its own incidents: alerts an interrupted earlier run committed and never
        signalled belong to that run's inputs and twins, which died with it."""
        self._client = client
        self._store = store
        self._workflow_input = workflow_input
        self._task_queue = task_queue
        self._sweep_s = sweep_s
        self._signal_gap_s = signal_gap_s
        self._signalled_at: dict[str, float] = {}  # incident -> loop time of its last delivery
        self._deferred_wake: asyncio.TimerHandle | None = None
        self._paused = paused
        self._coalesce_s = coalesce_s
        self._prefix = incidents_prefix
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()
        self.backlog = 0
        self._started: set[str] = set()
        self._late = LateAlerts(client, store, workflow_input, task_queue)
        self.on_backlog: Callable[[int], None] | None = None

    def poke(self, _incidents: list[str] | None = None) -> None:
        """Something was committed: dispatch now rather than at the next sweep."""
        self._wake.set()

    async def run(self) -> None:
        """Dispatch on every poke and every `sweep_s`, until cancelled."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self._sweep_s)
            if self._paused:
                self._wake.clear()
                await self._measure_backlog()  # nothing leaves: what waits is the backlog
                continue
            # Let the commits of a burst land, so one pass (and one write) covers them all.
            await asyncio.sleep(self._coalesce_s)
            self._wake.clear()
            try:
                while await self.dispatch_pending() >= PASS_LIMIT:
                    pass
            except asyncio.CancelledError:
                raise
            except Exception as error:  # Temporal or the store is down: the next sweep retries
                log.warning(
                    "dispatching alerts failed, retrying in %.0fs: %s", self._sweep_s, error
                )
                await self._measure_backlog()  # alerts pile up meanwhile: bound them

    async def _measure_backlog(self) -> None:
        """Count what waits to be signalled, for ingestion's bound (`max_backlog`), when no pass
        runs to count it: while paused, and after a pass that failed."""
        try:
            self.backlog = await self._store.intake.backlog(self._prefix)
        except Exception as error:  # the store is down too: ingestion's own writes will fail
            log.warning("counting the dispatch backlog failed: %s", error)
            return
        if self.on_backlog is not None:
            self.on_backlog(self.backlog)

    async def dispatch_pending(self) -> int:
        """One pass: signal every incident with alerts committed but not signalled, then mark
        them signalled in one write. Returns how many alerts it read, less those it deferred
        (their incident was signalled less than `signal_gap_s` ago: a wake-up is set for them)."""
        async with self._lock:
            pending = await self._store.intake.unsignalled(PASS_LIMIT, self._prefix)
            by_incident: dict[str, list[Unsignalled]] = {}
            for row in pending:
                by_incident.setdefault(row.incident_id, []).append(row)
            deferred = self._defer(by_incident)
            gate = asyncio.Semaphore(PARALLEL_SIGNALS)
            new = [incident_id for incident_id in by_incident if incident_id not in self._started]
            incidents = await self._store.intake.incidents(new) if new else {}

            async def one(incident_id: str, rows: list[Unsignalled]) -> list[str]:
                async with gate:
                    return await self._signal(incident_id, rows, incidents.get(incident_id))

            done = await asyncio.gather(*(one(i, rows) for i, rows in by_incident.items()))
            signalled = [fingerprint for batch in done for fingerprint in batch]
            if signalled:
                await self._store.intake.mark_signalled(signalled, datetime.now(UTC))
            # A full pass may have left more behind: count them; otherwise the pass caught up.
            full = len(pending) >= PASS_LIMIT
            self.backlog = await self._store.intake.backlog(self._prefix) if full else 0
            if self.on_backlog is not None:
                self.on_backlog(self.backlog)
            return len(pending) - deferred

    def _defer(self, by_incident: dict[str, list[Unsignalled]]) -> int:
        """Take out of `by_incident` the incidents signalled less than `signal_gap_s` ago, and
        wake the dispatcher when the first of them is due. Returns how many alerts it took."""
        if not self._signal_gap_s:
            return 0
        now = asyncio.get_running_loop().time()
        if len(self._signalled_at) > STARTED_MEMORY:  # keep only what can still defer
            self._signalled_at = {
                i: at for i, at in self._signalled_at.items() if now - at < self._signal_gap_s
            }
        due_in = [
            (self._signalled_at[i] + self._signal_gap_s - now, i)
            for i in by_incident
            if i in self._signalled_at and now - self._signalled_at[i] < self._signal_gap_s
        ]
        if not due_in:
            return 0
        if self._deferred_wake is not None:
            self._deferred_wake.cancel()
        wait_s = min(wait for wait, _ in due_in)
        self._deferred_wake = asyncio.get_running_loop().call_later(wait_s, self._wake.set)
        return sum(len(by_incident.pop(i)) for _, i in due_in)

    def _delivered(self, incident_id: str, kind: str) -> None:
        ALERT_DELIVERIES.labels(kind).inc()
        if self._signal_gap_s:
            self._signalled_at[incident_id] = asyncio.get_running_loop().time()

    async def _signal(
        self, incident_id: str, rows: list[Unsignalled], incident: IncidentRecord | None
    ) -> list[str]:
        """Deliver the alerts to the incident's workflow; the fingerprints it delivered.

        The first delivery is a signal-with-start (it carries the workflow's input, the whole
        policy included); later ones to a workflow this dispatcher started are plain signals.
        `incident` is the stored incident when the pass read it (it is read here otherwise)."""
        uids = list(dict.fromkeys(row.alert_uid for row in rows))
        batches = [
            AlertsAdded(alert_uids=uids[start : start + SIGNAL_BATCH])
            for start in range(0, len(uids), SIGNAL_BATCH)
        ]
        try:
            if incident_id in self._started:
                handle = self._client.get_workflow_handle(workflow_id(incident_id))
                try:
                    for batch in batches:
                        await handle.signal("alerts_added", batch)
                    self._delivered(incident_id, "signal")
                    return [row.fingerprint for row in rows]
                except RPCError as error:
                    if error.status is not RPCStatusCode.NOT_FOUND:
                        raise
                    self._started.discard(incident_id)  # closed since: the start below refuses
            return await self._start(incident_id, rows, batches, incident)
        except WorkflowAlreadyStartedError:  # its workflow has closed: late alerts
            taken = await self._late.take(incident_id, rows)
            if taken.started:
                self._remember(incident_id)
            return taken.fingerprints

    async def _start(
        self,
        incident_id: str,
        rows: list[Unsignalled],
        batches: list[AlertsAdded],
        incident: IncidentRecord | None,
    ) -> list[str]:
        if incident is None:
            incident = await self._store.get_incident(incident_id)
        if incident is None:  # cannot happen: the incident commits with its first alert
            log.error("alerts of unknown incident %s left unsignalled", incident_id)
            return []
        params = self._workflow_input(incident)
        for batch in batches:
            await self._client.start_workflow(
                IncidentWorkflow.run,
                params,
                id=workflow_id(incident_id),
                task_queue=self._task_queue,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                start_signal="alerts_added",
                start_signal_args=[batch],
            )
        self._remember(incident_id)
        self._delivered(incident_id, "start")
        return [row.fingerprint for row in rows]

    def _remember(self, incident_id: str) -> None:
        if len(self._started) >= STARTED_MEMORY:
            self._started.clear()  # a forgotten incident costs one signal-with-start, no more
        self._started.add(incident_id)
