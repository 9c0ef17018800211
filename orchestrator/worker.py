"""Worker composition: which workflows and activities serve which task queue.

Roles scale separately: `triage` runs the incident workflows and their bookkeeping activities,
`agents` runs the LangGraph graphs, `actions` runs the side effects. One process may host any
subset; any number of processes may run against one Temporal cluster.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from langchain_core.language_models import BaseChatModel
from langgraph.checkpoint.base import BaseCheckpointSaver
from temporalio.client import Client
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from agents.model_client import AgentModels
from orchestrator.activities.agents import AgentActivities
from orchestrator.activities.approvals import ApprovalActivities
from orchestrator.activities.guards import GuardActivities
from orchestrator.activities.ingest import PollActivities
from orchestrator.activities.liveness import LivenessInterceptor
from orchestrator.activities.records import RecordActivities
from orchestrator.activities.response import ResponseActivities
from orchestrator.approvals.notifier import ApprovalNotifier
from orchestrator.backends import Backends
from orchestrator.dry_run import DryRunResponseActivities
from orchestrator.policy.model import PolicyDocument
from orchestrator.settings import TemporalSettings
from orchestrator.store.repository import Store
from orchestrator.temporal import payload_passes
from orchestrator.temporal.client import Role, task_queue
from orchestrator.workflows.incident import IncidentWorkflow
from orchestrator.workflows.poll import AlertPollWorkflow
from orchestrator.workflows.rollback import RollbackWorkflow

ALL_ROLES: tuple[Role, ...] = (Role.TRIAGE, Role.AGENTS, Role.ACTIONS)


@dataclass(frozen=True)
class WorkerDeps:
    store: Store
    backends: Backends
    checkpointer: BaseCheckpointSaver
    notifier: ApprovalNotifier
    model: AgentModels | BaseChatModel | None = None
    # Pull mode's activities (`ingest.poll`), served with `AlertPollWorkflow` beside the incidents.
    poll: PollActivities | None = None
    # The deployment's policy, whose standing rules `response.execute` re-checks (None: only
    # the workflow's own decision stands, as in tests of the workflow alone).
    policy: PolicyDocument | None = None
    # Side effects off (`orchestrator/dry_run.py`): the actions role holds no responder at all.
    dry_run: bool = False


def build_workers(
    client: Client,
    temporal: TemporalSettings,
    deps: WorkerDeps,
    roles: Sequence[Role] = ALL_ROLES,
) -> list[Worker]:
    payload_passes.install()  # no-op passes over every activation skipped (see the module)
    builders: dict[Role, Callable[[], dict[str, Any]]] = {
        Role.TRIAGE: lambda: {
            "workflows": [IncidentWorkflow, RollbackWorkflow]
            + ([AlertPollWorkflow] if deps.poll else []),
            "activities": _activities(
                RecordActivities(deps.store, deps.backends),
                ApprovalActivities(deps.store, deps.notifier),
                GuardActivities(deps.store),
                *([deps.poll] if deps.poll else []),
            ),
        },
        Role.AGENTS: lambda: {
            "activities": _activities(
                AgentActivities(deps.store, deps.backends, deps.checkpointer, deps.model)
            ),
        },
        Role.ACTIONS: lambda: {
            "activities": _activities(
                DryRunResponseActivities(deps.store)
                if deps.dry_run
                else ResponseActivities(deps.store, deps.backends, deps.policy)
            ),
        },
    }
    return [
        Worker(
            client,
            task_queue=task_queue(temporal, role),
            activity_executor=ThreadPoolExecutor(4),
            interceptors=[LivenessInterceptor()],  # heartbeats, bounded failures
            max_cached_workflows=temporal.max_cached_workflows,
            workflow_runner=WORKFLOW_RUNNER,
            build_id=build_id(),
            **builders[role](),
        )
        for role in roles
    ]


# Garrison's workflow modules hold no state of their own (each incident's lives in its workflow
# object; tests/orchestrator/workflows/test_workflow_modules.py keeps their globals constant), so
# the sandbox shares them instead of importing them again for every workflow it starts: about 3%
# of a corpus simulation's GIL time, and a copy of each module for every one of the up to 1,000
# workflows a worker caches (bench.memory at 1,000 waiting: 635 -> 573 MB). Passed-through code is
# no longer checked by the sandbox for clocks, randomness or I/O; the tests' replays (checked-in
# and simulated histories, crash tests) run the same workflows under the full sandbox, which is.
WORKFLOW_RUNNER = SandboxedWorkflowRunner(
    restrictions=SandboxRestrictions.default.with_passthrough_modules("orchestrator.workflows")
)


@cache
def build_id() -> str:
    """The workers' build id: Garrison's version. Without one, the SDK derives it by hashing the
    bytecode of every loaded module, 0.5 s of each process's start (Garrison does not use
    worker versioning, where the id selects which code runs a workflow)."""
    try:
        return f"garrison-{version('garrison')}"
    except PackageNotFoundError:  # running from a source tree that is not installed
        return "garrison-source"


def _activities(*holders: object) -> list[Callable[..., Any]]:
    """Every `@activity.defn` method of the given objects."""
    found: list[Callable[..., Any]] = []
    for holder in holders:
        for name in dir(type(holder)):
            member = getattr(holder, name)
            if callable(member) and hasattr(member, "__temporal_activity_definition"):
                found.append(member)
    return found
