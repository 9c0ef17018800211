"""Replaying one recorded incident through the real IncidentWorkflow, in virtual time.

The workflow runs with time skipping off while it works, so activities take their real (short)
time; whenever it waits for a human, this driver plays the analyst's clock: it fast-forwards the
workflow's own virtual clock to the moment the simulated analyst answers (reminders and
escalations fire on the way), or to the request's expiry when nobody answers. Analyst latency and
SLA timers therefore cost no wall time, and every decision goes through the same ApprovalService
as the CLI and the API.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from temporalio.client import (
    Client,
    WorkflowFailureError,
    WorkflowHandle,
    WorkflowQueryFailedError,
)
from temporalio.service import RPCError
from temporalio.testing import TimeSkipper

from orchestrator.approvals.service import ApprovalService
from orchestrator.backends import workflow_id
from orchestrator.ingest.dispatch import Dispatcher, WorkflowInputFor
from orchestrator.ingest.normalised import Normalised, Shape
from orchestrator.ingest.pipeline import Ingestor
from orchestrator.ingest.sink import Accepted, Backpressure
from orchestrator.models import (
    IncidentPhase,
    IncidentResult,
    IncidentStatusView,
    IncidentWorkflowInput,
    PendingApprovalView,
)
from orchestrator.observability.tracing import span
from orchestrator.policy.model import IngestRules
from orchestrator.store.records import IncidentRecord
from orchestrator.store.repository import Store
from orchestrator.workflows.incident import IncidentWorkflow
from simulations.analyst import Analyst, deciders
from simulations.loader import LoadedIncident

POLL_S = 0.05
IDLE_MAX_S = 0.4
SETTLE_MAX_S = 2.0
# A status query a worker failed to answer is asked again, this many times in a row at most.
QUERY_ATTEMPTS = 5
QUERY_RETRY_S = 1.0
# A batch ingestion refused (the store busy, Temporal behind) is sent again, as a sender would.
DELIVERY_ATTEMPTS = 6
MAX_DELIVERY_WAIT_S = 5.0
StatusObserver = Callable[[IncidentStatusView], None]


@dataclass(frozen=True)
class ReplayContext:
    client: Client
    skipper: TimeSkipper
    store: Store
    approvals: ApprovalService
    triage_queue: str
    timeout_s: float
    # Every replayed incident enters through ingestion (`orchestrator.ingest`), as live alerts do;
    # each incident's workflow input is registered in `inputs` before its alerts are dispatched.
    inputs: dict[str, IncidentWorkflowInput] = field(default_factory=dict)
    # The input of an incident ingestion opened that nobody registered (a redelivery to a closed
    # incident opens another); None: such an incident is a KeyError.
    input_for: WorkflowInputFor | None = None
    # Dispatch only incidents whose id starts with this (a simulation run's `sim-<run>--`).
    incidents_prefix: str | None = None
    ingest: Ingestor = field(init=False)
    dispatcher: Dispatcher = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "ingest", Ingestor(self.store, IngestRules()))

        def params(record: IncidentRecord) -> IncidentWorkflowInput:
            if record.id in self.inputs or self.input_for is None:
                return self.inputs[record.id]
            return self.input_for(record)

        dispatcher = Dispatcher(
            self.skipper.client,
            self.store,
            params,
            self.triage_queue,
            incidents_prefix=self.incidents_prefix,
        )
        object.__setattr__(self, "dispatcher", dispatcher)


@dataclass(frozen=True)
class ReplayOutcome:
    recorded_id: str
    result: IncidentResult | None
    error: str | None
    wall_s: float


async def replay_incident(
    ctx: ReplayContext,
    loaded: LoadedIncident,
    incident_id: str,
    params: IncidentWorkflowInput,
    analyst: Analyst,
    on_status: StatusObserver | None = None,
) -> ReplayOutcome:
    """`on_status` sees every status the driver polls (`--fault` lifts a fault on it)."""
    # Tracing on: one trace for the whole replay, the driver's queries and decisions included.
    with span("replay", incident_id=incident_id):
        return await _replay(ctx, loaded, incident_id, params, analyst, on_status)


async def _replay(
    ctx: ReplayContext,
    loaded: LoadedIncident,
    incident_id: str,
    params: IncidentWorkflowInput,
    analyst: Analyst,
    on_status: StatusObserver | None,
) -> ReplayOutcome:
    spec = loaded.spec
    loop = asyncio.get_running_loop()
    started = loop.time()
    handle = await start_incident(ctx, loaded, incident_id, params)
    try:
        result = await asyncio.wait_for(
            _drive(ctx, handle, analyst, on_status), timeout=ctx.timeout_s
        )
    except TimeoutError:
        await handle.terminate("simulation timeout")
        return ReplayOutcome(spec.id, None, f"timed out after {ctx.timeout_s:.0f}s", 0.0)
    except WorkflowFailureError as failure:
        return ReplayOutcome(spec.id, None, f"workflow failed: {failure.cause}", 0.0)
    except Exception as error:  # the driver failed (an RPC, the analyst): end this incident only
        with contextlib.suppress(Exception):
            await handle.terminate("simulation driver failed")
        reason = f"driver failed: {type(error).__name__}: {error}"
        return ReplayOutcome(spec.id, None, reason, loop.time() - started)
    return ReplayOutcome(spec.id, result, None, loop.time() - started)


async def start_incident(
    ctx: ReplayContext,
    loaded: LoadedIncident,
    incident_id: str,
    params: IncidentWorkflowInput | None,
) -> WorkflowHandle[IncidentWorkflow, IncidentResult]:
    """Hand the incident's alerts to ingestion, as a sender would, then dispatch them.

    `incident_id` is `<scope>--<recorded id>`: the recording is the sender's own grouping
    (`correlation`), so ingestion opens exactly that incident in the run's scope, and the twins
    route it to its recording by the suffix. `params` None: `ctx.input_for` builds the input."""
    scope, _, recorded = incident_id.rpartition("--")
    if params is not None:
        ctx.inputs[incident_id] = params
    accepted = await deliver(ctx, loaded, scope, recorded)
    if accepted.incidents != [incident_id]:
        raise RuntimeError(f"ingestion placed {incident_id} in {accepted.incidents}")
    return ctx.skipper.client.get_workflow_handle_for(
        IncidentWorkflow.run, workflow_id(incident_id)
    )


async def deliver(
    ctx: ReplayContext,
    loaded: LoadedIncident,
    scope: str,
    correlation: str | None,
    uid_prefix: str = "",
) -> Accepted:
    """The recording's alerts through ingestion in `scope`, grouped by `correlation`, then
    dispatched. The same recording delivered again to the same scope is deduplicated alert by
    alert, as a sender's re-sends are; a `uid_prefix` makes them new alerts instead."""
    sent = [
        alert.model_copy(update={"uid": f"{uid_prefix}{alert.uid}"}) if uid_prefix else alert
        for alert in loaded.spec.alerts
    ]
    items = [
        Normalised(
            alert=alert,
            source=f"recorded:{loaded.spec.id}",
            shape=Shape.GARRISON,
            original=alert.model_dump(mode="json"),
            correlation=correlation,
        )
        for alert in sent
    ]
    # Tracing on: the dispatch starts the workflow, under this span (the root of the incident's
    # trace for `garrison incidents replay`, a child of `replay` in a simulation).
    with span("deliver", recording=loaded.spec.id, scope=scope):
        accepted = await _accept(ctx, items, scope)
        await ctx.dispatcher.dispatch_pending()
    return accepted


async def _accept(ctx: ReplayContext, items: list[Normalised], scope: str) -> Accepted:
    """Ingestion's answer, waiting out its backpressure as a sender waits out a 429: nothing of
    a refused batch was stored, so sending it again is safe (and deduplicated alert by alert)."""
    for attempt in range(1, DELIVERY_ATTEMPTS + 1):
        try:
            return await ctx.ingest.accept(items, scope=scope)
        except Backpressure as busy:
            if attempt == DELIVERY_ATTEMPTS:
                raise
            await asyncio.sleep(min(busy.retry_after_s, MAX_DELIVERY_WAIT_S))
    raise AssertionError("unreachable")


async def drive_incident(
    ctx: ReplayContext,
    handle: WorkflowHandle[IncidentWorkflow, IncidentResult],
    analyst: Analyst,
) -> IncidentResult:
    """Answer the incident's approval requests as `analyst` says, in virtual time, until it
    closes (a live incident's shadow, `simulations/shadow/live.py`)."""
    return await _drive(ctx, handle, analyst)


async def _drive(
    ctx: ReplayContext,
    handle: WorkflowHandle[IncidentWorkflow, IncidentResult],
    analyst: Analyst,
    on_status: StatusObserver | None = None,
) -> IncidentResult:
    answered: set[str] = set()
    unsettled: dict[str, float] = {}  # since when each request has waited for the rest to settle
    # The workflow's end, long-polled beside the status queries: an idle tick waits on it rather
    # than asking whether it closed, and the driver returns the moment it does.
    ended = asyncio.ensure_future(handle.result())
    idle = _IdlePoll(fixed=on_status is not None)
    failed_queries = 0
    try:
        while True:
            try:
                status: IncidentStatusView = await handle.query(IncidentWorkflow.status)
            except RPCError:
                # A query needs a worker: while one restarts (a crash, a deploy) it times out.
                await asyncio.sleep(POLL_S * 4)
                continue
            except WorkflowQueryFailedError:
                # A worker that has just taken the workflow over answers by replaying its
                # history, and one such answer failed in CI after a worker was killed. Asked
                # again; a workflow that cannot be replayed keeps failing, and the driver fails.
                failed_queries += 1
                if failed_queries >= QUERY_ATTEMPTS:
                    raise
                await asyncio.sleep(QUERY_RETRY_S)
                continue
            failed_queries = 0
            if on_status is not None:
                on_status(status)
            if status.phase is IncidentPhase.CLOSED:
                return await handle.result()
            waiting = [p for p in status.pending_approvals if p.approval_id not in answered]
            if waiting and not await _settled(handle, waiting[0].approval_id, unsettled):
                continue
            if not waiting:
                ended = await _wait_end(handle, ended, idle.next(status))
                if ended.done():
                    return await ended
                continue
            request = waiting[0]
            answered.add(request.approval_id)
            await _answer(ctx, handle, analyst, status.incident_id, request)
    finally:
        if ended.done() and not ended.cancelled():
            ended.exception()  # seen: raised above, or moot once the caller gave up
        ended.cancel()


class _IdlePoll:
    """How long an idle tick waits before the next status query: POLL_S after any change, then
    doubling up to IDLE_MAX_S while the status stays the same (a workflow waiting on a human or
    a retry backoff need not be asked 20 times a second). `fixed`: always POLL_S (a status
    observer, `--fault`, acts on the statuses it sees, so it sees them at the same pace)."""

    def __init__(self, *, fixed: bool) -> None:
        self._fixed = fixed
        self._last: IncidentStatusView | None = None
        self._wait = POLL_S

    def next(self, status: IncidentStatusView) -> float:
        if self._fixed or status != self._last:
            self._wait = POLL_S
        else:
            self._wait = min(self._wait * 2, IDLE_MAX_S)
        self._last = status
        return self._wait


async def _wait_end(
    handle: WorkflowHandle[IncidentWorkflow, IncidentResult],
    ended: asyncio.Future[IncidentResult],
    timeout_s: float,
) -> asyncio.Future[IncidentResult]:
    """Wait up to `timeout_s` for the workflow to end; the future to keep waiting on. A long poll
    that failed on an RPC (the server restarting) is asked again, as `handle.result()` would be."""
    await asyncio.wait({ended}, timeout=timeout_s)
    if ended.done() and isinstance(ended.exception(), RPCError):
        return asyncio.ensure_future(handle.result())
    return ended


async def _settled(
    handle: WorkflowHandle[IncidentWorkflow, IncidentResult],
    approval_id: str,
    unsettled: dict[str, float],
) -> bool:
    """Whether the workflow has nothing but human waits left (no activity, no workflow task), so
    that fast-forwarding its clock to the analyst's answer skips no work still running: the other
    proposals of a round (since `parallel-approvals-v1`) are being decided or executed beside a
    pending request. Given up after SETTLE_MAX_S of wall time (an activity retrying under a
    fault), as the driver answered before. Sleeps a poll when not settled."""
    loop = asyncio.get_running_loop()
    since = unsettled.setdefault(approval_id, loop.time())
    raw = (await handle.describe()).raw_description
    if not raw.pending_activities and not raw.HasField("pending_workflow_task"):
        return True
    if loop.time() - since > SETTLE_MAX_S:
        return True
    await asyncio.sleep(POLL_S)
    return False


async def _answer(
    ctx: ReplayContext,
    handle: WorkflowHandle[IncidentWorkflow, IncidentResult],
    analyst: Analyst,
    incident_id: str,
    request: PendingApprovalView,
) -> None:
    answer = await analyst.answer(incident_id, request)
    decision = answer.decision
    answer_at = request.requested_at + timedelta(seconds=answer.latency_s)
    if decision is None or answer_at >= request.expires_at:
        await _advance_to(ctx, handle, request.expires_at + timedelta(seconds=1))
        return
    await _advance_to(ctx, handle, answer_at)
    users = deciders(answer, request.required_approvers, escalated=answer_at >= request.deadline)
    for user in users:
        reply = await ctx.approvals.decide(
            request.approval_id, user, decision, channel="simulation"
        )
        if not reply.accepted or (reply.ack and reply.ack.status != "recorded"):
            break


async def _advance_to(
    ctx: ReplayContext, handle: WorkflowHandle[IncidentWorkflow, IncidentResult], moment: datetime
) -> None:
    now = await ctx.skipper.get_current_time(handle)
    if moment > now:
        await ctx.skipper.fast_forward(handle, moment - now)
