"""The composition root of every Garrison process: `open_runtime(settings, backends)` builds what
the workers (and the HTTP server beside them) need from settings, starts the workers of the roles
asked for, and closes everything in reverse order on exit.

`garrison server`, `garrison worker` and `garrison simulate` all go through it, so a role behaves
the same in every process for the same settings: the same store, the same Temporal, the same chat
model, and the same approval channel (Slack when `GARRISON_SLACK_*` is set, else the log).

Order of construction (closed in reverse): approver directory and chat model (settings only, so a
wrong value fails before anything starts) -> backends' close -> store (and its audit anchors: on a
schedule, and once more at shutdown) -> Slack client and notifier
-> LangGraph checkpointer -> Temporal client (and the embedded server) -> workers. A new component
(the alert ingestor, say) is built at the point where its dependencies exist, registers its close
on the stack, and becomes a field of `Runtime`.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from orchestrator.approvals.directory import ApproverDirectory, DirectoryError
from orchestrator.approvals.notifier import ApprovalNotifier, LogNotifier
from orchestrator.backends import Backends
from orchestrator.composition import open_checkpointer, open_store
from orchestrator.model_loading import (  # re-exported: the runtime's model loading
    MODEL_ENV as MODEL_ENV,
)
from orchestrator.model_loading import (
    PROVIDERS as PROVIDERS,
)
from orchestrator.model_loading import (
    ModelProvider as ModelProvider,
)
from orchestrator.model_loading import (
    load_model as load_model,
)
from orchestrator.model_loading import (
    load_models,
)
from orchestrator.settings import ConfigError, GarrisonSettings
from orchestrator.temporal.client import Role, temporal_client
from orchestrator.worker import ALL_ROLES, WorkerDeps, build_workers

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel
    from langgraph.checkpoint.base import BaseCheckpointSaver
    from temporalio.client import Client
    from temporalio.runtime import Runtime as TemporalRuntime
    from temporalio.worker import Worker

    from agents.model_client import AgentModels
    from orchestrator.activities.ingest import PollActivities
    from orchestrator.ingest.dispatch import Dispatcher
    from orchestrator.ingest.pipeline import Ingestor
    from orchestrator.policy.model import PolicyDocument
    from orchestrator.server.app import SlackRuntime
    from orchestrator.store.repository import Store
    from orchestrator.temporal.embedded import EmbeddedTemporal

APPROVERS_ENV = "GARRISON_APPROVERS_FILE"


@dataclass(frozen=True)
class Runtime:
    """A running Garrison process's dependencies; valid inside `open_runtime` only."""

    settings: GarrisonSettings
    store: Store
    checkpointer: BaseCheckpointSaver[str]
    temporal: Client
    embedded: EmbeddedTemporal | None  # the embedded dev server; None on a configured cluster
    backends: Backends | None  # None in a process that runs no workers (an API-only server)
    directory: ApproverDirectory | None  # None when GARRISON_APPROVERS_FILE is not set
    notifier: ApprovalNotifier
    slack: SlackRuntime | None  # what the server's interactivity endpoint needs; None: no Slack
    model: AgentModels | BaseChatModel | None  # None: the agents' deterministic reasoning
    roles: tuple[Role, ...]
    workers: tuple[Worker, ...]  # running; empty with run_workers=False
    ingest: Ingestor  # the one door alerts come in by (`orchestrator/ingest/`)
    dispatcher: Dispatcher  # signals incidents' workflows; running in the background if asked


@asynccontextmanager
async def open_runtime(
    settings: GarrisonSettings,
    backends: Backends | None,
    *,
    roles: Sequence[Role] = ALL_ROLES,
    model: AgentModels | BaseChatModel | None = None,
    run_workers: bool = True,
    slack: bool = True,
    dispatch: bool = True,
    dry_run: bool = False,
) -> AsyncIterator[Runtime]:
    """Build the runtime and start the workers of `roles`. The runtime owns `backends` (closed on
    exit). `model` overrides `GARRISON_MODEL`; `slack=False` logs approval requests whatever the
    Slack settings (simulations, whose analysts are simulated). `dispatch` runs the dispatcher's
    loop (signal after every commit, sweep every `GARRISON_INGEST__SWEEP_S`): every server and
    every process running the triage role does. Raises `ConfigError` for a wrong configuration
    before starting anything. `dry_run` serves the workers side effects off
    (`orchestrator/dry_run.py`) and approval requests to the log: what a shadow of a candidate
    version runs with."""
    if run_workers and backends is None:
        raise ValueError("workers need backends")
    if dry_run:  # and no person is asked to approve what will not be done
        slack = False
    if dry_run and backends is not None:
        from orchestrator.dry_run import DryRunBackends

        backends = DryRunBackends(backends)
    async with AsyncExitStack() as stack:
        if backends is not None:
            stack.push_async_callback(_close_backends, backends)
        runtime, policy = await _open_services(
            stack, settings, backends, model, slack=slack, dispatch=dispatch
        )
        if run_workers:
            runtime = await _start_workers(stack, runtime, policy, roles, dry_run=dry_run)
        yield runtime


async def _open_services(
    stack: AsyncExitStack,
    settings: GarrisonSettings,
    backends: Backends | None,
    model: AgentModels | BaseChatModel | None,
    *,
    slack: bool,
    dispatch: bool,
) -> tuple[Runtime, PolicyDocument]:
    """The runtime without workers, and the policy they will enforce. What reads settings only
    comes first, so that a wrong value fails before anything starts."""
    directory = load_directory(settings, slack=slack)
    chat_model = model if model is not None else load_models(settings)
    policy = _load_policy(settings)
    store = await open_store(settings)
    stack.push_async_callback(store.close)
    _anchor_on_schedule(stack, store, settings.audit.anchor_interval_s)
    slack_runtime = None
    if slack and settings.slack.enabled:
        assert directory is not None  # load_directory insists on it
        slack_runtime = await _open_slack(stack, settings, store, directory)
    notifier: ApprovalNotifier = slack_runtime.notifier if slack_runtime else LogNotifier()
    checkpointer = await stack.enter_async_context(open_checkpointer(settings))
    metrics_runtime = _instruments(stack, settings)
    temporal, embedded = await stack.enter_async_context(temporal_client(settings, metrics_runtime))
    dispatcher, ingest = await _open_ingest(stack, settings, policy, store, temporal, dispatch)
    runtime = Runtime(
        settings=settings,
        store=store,
        checkpointer=checkpointer,
        temporal=temporal,
        embedded=embedded,
        backends=backends,
        directory=directory,
        notifier=notifier,
        slack=slack_runtime,
        model=chat_model,
        roles=(),
        workers=(),
        ingest=ingest,
        dispatcher=dispatcher,
    )
    return runtime, policy


async def _start_workers(
    stack: AsyncExitStack,
    runtime: Runtime,
    policy: PolicyDocument,
    roles: Sequence[Role],
    *,
    dry_run: bool,
) -> Runtime:
    """The workers of `roles`, started (with pull mode's polls when triage is one of them): the
    runtime with them, and with the backends they were given."""
    settings, store, backends = runtime.settings, runtime.store, runtime.backends
    assert backends is not None  # open_runtime insists on it
    poll = None
    if Role.TRIAGE in roles:
        poll = await _open_polls(stack, settings, store, runtime.ingest, runtime.temporal)
    if settings.intel_file is not None:  # partners' indicators join the vendor's answers
        from orchestrator.intel.backends import SharedIntelBackends

        backends = SharedIntelBackends(backends, store.intel)
    deps = WorkerDeps(
        store,
        backends,
        runtime.checkpointer,
        runtime.notifier,
        model=runtime.model,
        poll=poll,
        policy=policy,
        dry_run=dry_run,
    )
    workers = build_workers(runtime.temporal, settings.temporal, deps, roles)
    for worker in workers:
        await stack.enter_async_context(worker)
    return replace(runtime, backends=backends, roles=tuple(roles), workers=tuple(workers))


YOUNG_GENERATION = 10_000  # objects allocated between young collections (CPython's default: 700)


def settle_heap() -> None:
    """For a long-running process once its runtime is up: collect what startup left behind, then
    freeze the rest (modules, models, compiled queries, clients) out of the collector's reach.
    Every full collection otherwise walked it all: 150-175 ms pauses of `garrison server` under
    load, which held every request in flight (the alerts API's p99). What is frozen is never
    collected as a cycle; it lives as long as the process anyway.

    The young generation is also made larger: with CPython's 700, an activity's or a workflow
    task's short-lived objects were still alive at most young collections, so they were promoted
    and walked again by the older generations' collections, full ones included. Filling a worker
    with 1,000 incidents waiting for approval (`bench.memory`) spent 54 s of its 291 s collecting,
    in 79 full collections of up to 1.2 s (3 s on the way to 10,000 waiting, past the SDK's 2 s
    deadlock detector); with a young generation of 10,000 objects, 16 s of 264 s in 5. A corpus
    simulation collects 70 times instead of 1,436. The garbage held between collections grows by
    a few megabytes at most."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_GENERATION, middle, old)


def _anchor_on_schedule(stack: AsyncExitStack, store: Store, interval_s: float) -> None:
    """Anchor the audit head every `interval_s` when it moved, and once more on the way out:
    registered right after the store, this runs after the workers and the dispatcher have
    stopped, so the last anchor covers everything this process wrote."""
    from orchestrator.store.anchors import anchor_periodically

    async def last_anchor() -> None:
        try:
            await store.anchor_if_moved()
        except Exception as error:  # the database or the sink is gone: say so, close the rest
            logging.getLogger(__name__).error(
                "audit anchor not written at shutdown: %s: %s", type(error).__name__, error
            )

    stack.push_async_callback(last_anchor)
    task = asyncio.create_task(
        anchor_periodically(store.anchor_if_moved, interval_s), name="garrison-audit-anchor"
    )
    _cancel_on_exit(stack, task)


def _instruments(stack: AsyncExitStack, settings: GarrisonSettings) -> TemporalRuntime:
    """Metrics of this process: vendor calls counted, the Temporal SDK's metrics buffered (the
    runtime to connect with) and drained between scrapes; and traces when an OTLP endpoint is
    configured (flushed on the way out, after the workers stopped)."""
    from orchestrator.observability import tracing
    from orchestrator.observability.metrics import (
        drain_periodically,
        observe_vendor_call,
        temporal_runtime,
    )
    from tools.http import add_call_observer

    add_call_observer(observe_vendor_call)
    if tracing.configure(settings):
        stack.callback(tracing.disable)
    runtime = temporal_runtime()
    task = asyncio.create_task(drain_periodically(), name="garrison-metrics-drain")
    _cancel_on_exit(stack, task)
    return runtime


def _load_policy(settings: GarrisonSettings) -> PolicyDocument:
    from orchestrator.policy.model import PolicyError, load_policy
    from orchestrator.policy.own_infrastructure import derive, with_own_infrastructure

    try:
        policy = load_policy(settings.policy_file)
    except PolicyError as error:
        raise ConfigError(str(error)) from None
    return with_own_infrastructure(policy, derive(settings))


async def _open_polls(
    stack: AsyncExitStack,
    settings: GarrisonSettings,
    store: Store,
    ingest: Ingestor,
    temporal: Client,
) -> PollActivities | None:
    """Pull mode, when a poll interval is configured: the activities, and one Temporal Schedule
    per source (created or updated; schedules of sources no longer configured are deleted)."""
    from orchestrator.activities.ingest import build_poll_activities
    from orchestrator.ingest.pollers.schedules import configured_sources, ensure_poll_schedules
    from orchestrator.temporal.client import task_queue
    from tools.vendor_settings import VendorConfigError

    queue = task_queue(settings.temporal, Role.TRIAGE)
    if not configured_sources(settings.poll):
        await ensure_poll_schedules(temporal, settings.poll, queue)  # removes stale schedules
        return None

    async def dead_letter(source: str, original: Mapping[str, object], reason: str) -> None:
        body = json.dumps(original, separators=(",", ":"), default=str)
        await store.intake.add_dead_letter(f"poll:{source}", body, reason, datetime.now(UTC))

    try:
        poll = await build_poll_activities(settings.poll, store, ingest, dead_letter)
    except VendorConfigError as error:
        raise ConfigError(str(error)) from None
    stack.push_async_callback(poll.aclose)
    await ensure_poll_schedules(temporal, settings.poll, queue)
    return poll


async def _open_ingest(
    stack: AsyncExitStack,
    settings: GarrisonSettings,
    policy: PolicyDocument,
    store: Store,
    temporal: Client,
    dispatch: bool,
) -> tuple[Dispatcher, Ingestor]:
    from orchestrator.ingest.dispatch import Dispatcher
    from orchestrator.ingest.inputs import live_workflow_input
    from orchestrator.ingest.pipeline import Ingestor
    from orchestrator.temporal.client import task_queue

    config = settings.ingest
    dispatcher = Dispatcher(
        temporal,
        store,
        live_workflow_input(settings, policy),
        task_queue(settings.temporal, Role.TRIAGE),
        sweep_s=config.sweep_s,
        signal_gap_s=config.signal_gap_s,
        paused=config.dispatch_paused,
    )
    ingest = Ingestor(
        store,
        policy.ingest,
        on_commit=dispatcher.poke,
        max_backlog=config.max_backlog,
        scope=config.scope,
    )
    dispatcher.on_backlog = lambda backlog: setattr(ingest, "backlog", backlog)
    stack.push_async_callback(ingest.aclose)
    if dispatch:
        task = asyncio.create_task(dispatcher.run(), name="garrison-dispatcher")
        _cancel_on_exit(stack, task)
    return dispatcher, ingest


def load_directory(settings: GarrisonSettings, *, slack: bool = True) -> ApproverDirectory | None:
    """The approver directory, when configured. Slack needs it (cards mention the approvers,
    clicks resolve to people), and its workspace, on every process that posts or receives."""
    slack_on = slack and settings.slack.enabled
    if settings.approvers_file is None:
        if slack_on:
            raise ConfigError(
                f"{APPROVERS_ENV} is required when Slack is configured (GARRISON_SLACK_*): "
                "the approver directory of the cards (see docs/operators.md)"
            )
        return None
    try:
        directory = ApproverDirectory.load(settings.approvers_file)
    except DirectoryError as error:
        raise ConfigError(str(error)) from None
    if slack_on and directory.slack is None:
        raise ConfigError(
            f"{settings.approvers_file}: slack.team_id is required when Slack is configured "
            "(clicks from any other workspace are refused)"
        )
    return directory


async def _open_slack(
    stack: AsyncExitStack, settings: GarrisonSettings, store: Store, directory: ApproverDirectory
) -> SlackRuntime:
    from orchestrator.server.app import SlackRuntime
    from orchestrator.slack.notifier import SlackNotifier
    from orchestrator.slack.webapi import SlackWebClient

    config = settings.slack
    assert config.bot_token and config.signing_secret and config.channel  # all or none
    client = SlackWebClient(config.api_url, config.bot_token)
    stack.push_async_callback(client.aclose)
    notifier = SlackNotifier(client, store, directory, config.channel)
    return SlackRuntime(config.signing_secret.get_secret_value(), notifier)


async def _close_backends(backends: Backends) -> None:
    close = getattr(backends, "aclose", None)  # vendor adapters hold HTTP clients
    if close is not None:
        await close()


def _cancel_on_exit(stack: AsyncExitStack, task: asyncio.Task[None]) -> None:
    """A background loop of this process, cancelled (and awaited) when the stack unwinds."""

    async def stop() -> None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    stack.push_async_callback(stop)
