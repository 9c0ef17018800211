"""Live shadow: the candidate follows a running deployment, side effects off.

`garrison shadow follow`, run with the candidate's settings (its knowledge folder, policy...) and
a database of its own, reads the deployment's closed incidents from the deployment's database
(`GARRISON_SHADOW_LIVE_DATABASE_URL`, only read) and replays each as `shadow--<incident id>`:
the same alerts through ingestion, the real `IncidentWorkflow` on task queues of its own
(`<prefix>-shadow-<role>`, so that no worker of the deployment ever runs a shadow's task), a
dry-run runtime (`open_runtime(dry_run=True)`: no responder at all), and the live analysts'
decisions mirrored: an approval request for an action the analysts approved (or denied) on the
live incident is approved (denied) by the simulated analysts, any other expires to the safe deny.
Its results stay in its own database; `garrison shadow report --live` pairs them with the live
incidents. docs/shadow.md, "Live".
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from orchestrator.backends import Backends, workflow_id
from orchestrator.ingest.normalised import Normalised, Shape
from orchestrator.models import DecisionKind, IncidentResult, PendingApprovalView
from orchestrator.policy.model import PolicyDocument, load_policy
from orchestrator.runtime import open_runtime
from orchestrator.settings import ConfigError, GarrisonSettings
from orchestrator.store.records import ApprovalStatus, IncidentRecord, IncidentStatus
from orchestrator.store.repository import Store
from orchestrator.workflows.incident import IncidentWorkflow
from simulations.analyst import Answer
from simulations.replay import ReplayContext, drive_incident
from simulations.runner import replay_context, workflow_input
from simulations.shadow.compare import ShadowReport, compare_sides
from simulations.shadow.records import ShadowIncident, ShadowSide, shadow_incident
from simulations.shadow.side import own_queues
from tools.actions import Action, ActionKind

SHADOW_SCOPE = "shadow"
SHADOW_PREFIX = f"{SHADOW_SCOPE}--"
MIRROR_LATENCY_S = 60.0


def shadow_of(incident_id: str) -> str:
    return f"{SHADOW_PREFIX}{incident_id}"


@dataclass(frozen=True)
class MirrorAnalyst:
    """Decides a shadow's approval requests as the analysts decided the live incident's."""

    decisions: dict[tuple[ActionKind, str], DecisionKind] = field(default_factory=dict)
    latency_s: float = MIRROR_LATENCY_S

    def decide(self, action: Action) -> DecisionKind | None:
        return self.decisions.get((action.kind, action.target))

    async def answer(self, incident_id: str, request: PendingApprovalView) -> Answer:
        return Answer(self.decide(request.action), self.latency_s)


async def mirror_analyst(live: Store, incident_id: str) -> MirrorAnalyst:
    decided = {
        ApprovalStatus.APPROVED: DecisionKind.APPROVE,
        ApprovalStatus.DENIED: DecisionKind.DENY,
    }
    return MirrorAnalyst(
        {
            (a.action.kind, a.action.target): decided[a.status]
            for a in await live.list_approvals(incident_id=incident_id)
            if a.status in decided
        }
    )


def live_database_url(settings: GarrisonSettings) -> str:
    """The deployment's database, which must not be this process's own."""
    url = settings.shadow_live_database_url
    if not url:
        raise ConfigError("GARRISON_SHADOW_LIVE_DATABASE_URL: required (the deployment's database)")
    if url == settings.effective_database_url:
        raise ConfigError(
            "GARRISON_SHADOW_LIVE_DATABASE_URL is this process's own database: the candidate's "
            "results go to a database of their own (GARRISON_DATABASE_URL or GARRISON_DATA_DIR)"
        )
    return url


@dataclass(frozen=True)
class Shadowed:
    incident_id: str
    result: IncidentResult | None
    error: str | None = None


async def follow_once(
    settings: GarrisonSettings,
    backends: Backends,
    *,
    limit: int = 100,
    timeout_s: float = 300.0,
) -> list[Shadowed]:
    """Shadow every closed live incident (the newest `limit`) not shadowed yet."""
    live = await Store.open(live_database_url(settings))
    policy = load_policy(settings.policy_file)
    own = own_queues(settings, SHADOW_SCOPE)
    done: list[Shadowed] = []
    try:
        closed = await live.list_incidents(IncidentStatus.CLOSED, limit)
        async with open_runtime(
            own, backends, slack=False, dispatch=False, dry_run=True
        ) as runtime:
            ctx = replay_context(
                runtime.temporal, runtime.store, own, policy, timeout_s, SHADOW_PREFIX
            )
            for record in closed:
                if record.id.startswith(SHADOW_PREFIX):
                    continue
                if await runtime.store.get_incident(shadow_of(record.id)) is None:
                    done.append(await _shadow(ctx, live, own, policy, record, timeout_s))
    finally:
        await live.close()
    return done


async def _shadow(
    ctx: ReplayContext,
    live: Store,
    settings: GarrisonSettings,
    policy: PolicyDocument,
    record: IncidentRecord,
    timeout_s: float,
) -> Shadowed:
    """The live incident's alerts into the shadow scope, its workflow driven to the end."""
    shadow = shadow_of(record.id)
    params = workflow_input(settings, policy, shadow, record.title)
    ctx.inputs[shadow] = params.model_copy(
        update={"group_key": f"{SHADOW_SCOPE}:{shadow}", "breaker_scope": shadow}
    )
    items = [
        Normalised(
            alert=alert,
            source=f"shadow:{record.id}",
            shape=Shape.GARRISON,
            original=alert.model_dump(mode="json"),
            correlation=record.id,
        )
        for alert in await live.alerts_for(record.id)
    ]
    accepted = await ctx.ingest.accept(items, scope=SHADOW_SCOPE)
    if accepted.incidents != [shadow]:
        return Shadowed(shadow, None, f"ingestion placed it in {accepted.incidents}")
    await ctx.dispatcher.dispatch_pending()
    handle = ctx.skipper.client.get_workflow_handle_for(IncidentWorkflow.run, workflow_id(shadow))
    analyst = await mirror_analyst(live, record.id)
    try:
        result = await asyncio.wait_for(drive_incident(ctx, handle, analyst), timeout=timeout_s)
    except TimeoutError:
        await handle.terminate("shadow timeout")
        return Shadowed(shadow, None, f"timed out after {timeout_s:.0f}s")
    return Shadowed(shadow, result)


async def live_report(settings: GarrisonSettings, own: Store, limit: int = 1000) -> ShadowReport:
    """Each shadow of this database beside its live incident."""
    live = await Store.open(live_database_url(settings))
    try:
        shadows = [
            i for i in await own.list_incidents(limit=limit) if i.id.startswith(SHADOW_PREFIX)
        ]
        current: list[ShadowIncident] = []
        candidate: list[ShadowIncident] = []
        for record in shadows:
            incident_id = record.id.removeprefix(SHADOW_PREFIX)
            current.append(await shadow_incident(live, incident_id, incident_id, None, None))
            candidate.append(await shadow_incident(own, incident_id, record.id, None, None))
    finally:
        await live.close()
    return compare_sides("live", _side("current", current), _side("candidate", candidate))


def _side(role: str, incidents: list[ShadowIncident]) -> ShadowSide:
    versions = sorted({i.knowledge_version for i in incidents if i.knowledge_version})
    return ShadowSide.model_validate(
        {
            "role": role,
            "run_id": "live",
            "knowledge_version": ", ".join(versions) or "-",
            "knowledge_dir": None,
            "python": "-",
            "incidents": [i.model_dump(mode="json") for i in incidents],
        }
    )
