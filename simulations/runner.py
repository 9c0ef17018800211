"""The simulation composition root: replays recorded incidents through the real pipeline on the
configured Temporal (the embedded dev server by default) and scores the run.

Every incident gets its own in-memory twins seeded from its recording, an incident id unique to
this run (so runs never share ledger keys), and its simulated analyst.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager, nullcontext
from dataclasses import dataclass

from langchain_core.language_models import BaseChatModel
from temporalio.client import Client
from temporalio.testing import TimeSkipper, TimeSkippingConfig

from agents.model_client import AgentModels
from orchestrator.approvals.directory import ApproverDirectory
from orchestrator.approvals.service import ApprovalService
from orchestrator.ingest.inputs import activity_profile
from orchestrator.models import ActivityProfile, IncidentResult, IncidentWorkflowInput
from orchestrator.policy.model import PolicyDocument, load_policy
from orchestrator.runtime import open_runtime
from orchestrator.settings import GarrisonSettings
from orchestrator.store.repository import Store
from orchestrator.temporal.client import Role, task_queue
from simulations.analyst import Analyst, SimulatedAnalyst, directory_groups
from simulations.emulated import EmulatedBackends, IncidentFaults
from simulations.faults import Fault
from simulations.loader import LoadedIncident
from simulations.model_runs import with_model_usage
from simulations.replay import ReplayContext, ReplayOutcome, replay_incident
from simulations.routing import RecordedBackends
from simulations.scorer import DeniedAction, ExecutedAction, IncidentRun, Scorecard, score
from simulations.spec import AnalystPolicy, AnalystSpec
from tools.vendor_spec import Capability, VendorSpec

SIM_PREFIX = "sim"


@dataclass(frozen=True)
class SimulationOptions:
    analyst: AnalystPolicy | None = None  # None: each incident's own `analyst`
    concurrency: int = 4
    incident_timeout_s: float = 300.0
    # None: GARRISON_MODEL's, and with none configured the agents' deterministic reasoning.
    model: AgentModels | BaseChatModel | None = None
    # None: in-memory twins; else the real vendor adapters against these vendors' emulators.
    emulated: dict[Capability, VendorSpec] | None = None
    # With `emulated`: faults on every incident's vendors (`simulations.faults`).
    faults: tuple[Fault, ...] = ()
    # The run's id (its incidents are `sim-<id>--<recorded id>`); None: a fresh one.
    run_id: str | None = None
    # Who answers an incident's approval requests (`garrison train`'s trainee); None: the
    # incident's simulated analyst. `trainees` join every approver group of the directory.
    analyst_for: Callable[[LoadedIncident, str, Store], Analyst] | None = None
    trainees: tuple[str, ...] = ()
    # Side effects off even on the twins (`orchestrator/dry_run.py`): what `garrison shadow` runs.
    dry_run: bool = False


def analyst_directory(policy: PolicyDocument, trainees: tuple[str, ...] = ()) -> ApproverDirectory:
    """The simulated on-call team: two analysts in every approver group, two leads in every
    escalation group of the policy's tiers (and the trainees of a training session in all)."""
    primary = {tier.approver_group for tier in policy.tiers.values()}
    escalation = {tier.escalation_group for tier in policy.tiers.values()}
    groups = directory_groups(primary, escalation, trainees)
    return ApproverDirectory.model_validate({"groups": groups})


def replay_context(
    client: Client,
    store: Store,
    settings: GarrisonSettings,
    policy: PolicyDocument,
    timeout_s: float,
    incidents_prefix: str | None = None,
    trainees: tuple[str, ...] = (),
) -> ReplayContext:
    return ReplayContext(
        client=client,
        skipper=TimeSkipper(client, config=TimeSkippingConfig(enabled=False)),
        store=store,
        approvals=ApprovalService(
            client, store, analyst_directory(policy, trainees), settings.agent_identity
        ),
        triage_queue=task_queue(settings.temporal, Role.TRIAGE),
        timeout_s=timeout_s,
        incidents_prefix=incidents_prefix,
    )


async def run_simulation(
    incidents: list[LoadedIncident],
    settings: GarrisonSettings,
    options: SimulationOptions,
    progress: Callable[[ReplayOutcome], None] | None = None,
    notice: Callable[[str], None] | None = None,
) -> Scorecard:
    policy = load_policy(settings.policy_file)
    run_id = options.run_id or uuid.uuid4().hex[:8]
    backends: RecordedBackends | EmulatedBackends = (
        RecordedBackends(incidents)
        if options.emulated is None
        else EmulatedBackends(incidents, options.emulated, options.faults)
    )
    ids = {loaded.spec.id: f"{SIM_PREFIX}-{run_id}--{loaded.spec.id}" for loaded in incidents}
    started = time.perf_counter()
    # Approvals go to the log whatever the Slack settings: the simulated analysts decide.
    # Its replays dispatch their own incidents (with the simulation's inputs and virtual time).
    async with open_runtime(
        settings,
        backends,
        model=options.model,
        slack=False,
        dispatch=False,
        dry_run=options.dry_run,
    ) as runtime:
        embedded = runtime.embedded
        if notice is not None and embedded is not None and embedded.ui_url:
            notice(f"Temporal Web UI: {embedded.ui_url} (the embedded dev server)")
        ctx = replay_context(
            runtime.temporal,
            runtime.store,
            settings,
            policy,
            options.incident_timeout_s,
            incidents_prefix=f"{SIM_PREFIX}-{run_id}--",
            trainees=options.trainees,
        )
        gate = asyncio.Semaphore(options.concurrency)

        async def one(loaded: LoadedIncident) -> ReplayOutcome:
            async with gate:
                incident_id = ids[loaded.spec.id]
                spec = loaded.spec.analyst
                if options.analyst is not None:
                    spec = AnalystSpec(policy=options.analyst, latency_s=spec.latency_s)
                analyst: Analyst = (
                    SimulatedAnalyst(spec=spec, truth=loaded.spec.truth)
                    if options.analyst_for is None
                    else options.analyst_for(loaded, incident_id, runtime.store)
                )
                started_at = time.perf_counter()
                try:
                    async with _serving(backends, incident_id) as faults:
                        outcome = await replay_incident(
                            ctx,
                            loaded,
                            incident_id,
                            workflow_input(settings, policy, incident_id, loaded.spec.title),
                            analyst,
                            on_status=None if faults is None else faults.observe,
                        )
                except Exception as error:  # one incident's failure never ends the run
                    reason = f"{type(error).__name__}: {error}".strip()
                    wall = time.perf_counter() - started_at
                    outcome = ReplayOutcome(loaded.spec.id, None, reason, wall)
                if progress is not None:
                    progress(outcome)
                return outcome

        outcomes = await asyncio.gather(*(one(loaded) for loaded in incidents))
        usage = await runtime.store.model_use.usage_for(ids.values())
    elapsed = time.perf_counter() - started
    runs = [_to_run(outcome) for outcome in outcomes]
    truths = {loaded.spec.id: loaded.spec.truth for loaded in incidents}
    card = score(runs, truths, threshold=policy.threshold, elapsed_s=elapsed)
    if isinstance(options.model, AgentModels):
        card = with_model_usage(card, options.model, ids, usage)
    return backends.annotate(card) if isinstance(backends, EmulatedBackends) else card


def _serving(
    backends: RecordedBackends | EmulatedBackends, incident_id: str
) -> AbstractAsyncContextManager[IncidentFaults | None]:
    if isinstance(backends, EmulatedBackends):
        return backends.serving(incident_id)
    return nullcontext()


def workflow_input(
    settings: GarrisonSettings,
    policy: PolicyDocument,
    incident_id: str,
    title: str,
    activity: ActivityProfile | None = None,
) -> IncidentWorkflowInput:
    """A recorded incident's workflow input; its activities' timeouts and retries are the
    deployment's (`GARRISON_ACTIVITIES__*`) unless `activity` says otherwise."""
    if activity is None:
        activity = activity_profile(settings.activities)
    return IncidentWorkflowInput(
        incident_id=incident_id,
        group_key=f"{SIM_PREFIX}:{incident_id}",
        # Each recording is its own world for the global isolation breaker: recorded incidents
        # happened apart, and replaying a corpus at once is no fleet-wide isolation wave.
        breaker_scope=f"{SIM_PREFIX}:{incident_id}",
        title=title,
        policy=policy,
        requester=settings.agent_identity,
        activity=activity,
        task_queue_agents=task_queue(settings.temporal, Role.AGENTS),
        task_queue_actions=task_queue(settings.temporal, Role.ACTIONS),
    )


def _to_run(outcome: ReplayOutcome) -> IncidentRun:
    result: IncidentResult | None = outcome.result
    if result is None:
        return IncidentRun(
            id=outcome.recorded_id,
            verdict=None,
            executed_actions=[],
            denied_actions=[],
            approvals_requested=0,
            elapsed_s=outcome.wall_s,
            error=outcome.error,
        )
    return IncidentRun(
        id=outcome.recorded_id,
        verdict=result.verdict,
        playbook=result.playbook,
        executed_actions=[
            ExecutedAction(
                kind=e.action.kind,
                target=e.action.target,
                risk=e.risk,
                approved_by=e.approved_by,
                approval_required=e.approval_required,
                protected=e.protected,
                executed_at_s=(e.at - result.started_at).total_seconds(),
                approval_wait_s=e.approval_wait_s,
                execution_s=e.execution_s,
            )
            for e in result.executed
        ],
        denied_actions=[
            DeniedAction(kind=d.action.kind, target=d.action.target, risk=d.risk, reason=d.reason)
            for d in result.denied
        ],
        approvals_requested=result.approvals_requested,
        elapsed_s=outcome.wall_s,
    )
