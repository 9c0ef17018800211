"""Readiness: can this process do its work now? The store answers, Temporal answers, and every
role's task queue that must be served has a worker polling it.

`/healthz` (liveness) depends on nothing: a database outage must not make Kubernetes restart
every API pod. `/readyz` runs `readiness()`: each check bounded by `CHECK_TIMEOUT_S`, all at once,
and names what failed, so the load balancer stops sending traffic and the operator reads why.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from temporalio.client import Client

    from orchestrator.store.repository import Store
    from orchestrator.temporal.client import Role

CHECK_TIMEOUT_S = 2.0


@dataclass(frozen=True)
class QueueCheck:
    """A role's task queue that must have a poller: the triage queue's workflow tasks, the
    other roles' activity tasks (what each role's workers poll first)."""

    role: Role
    name: str


@dataclass(frozen=True)
class Readiness:
    ready: bool
    checks: dict[str, dict[str, object]]

    def as_json(self) -> dict[str, object]:
        return {"status": "ready" if self.ready else "not ready", "checks": self.checks}


async def readiness(
    store: Store,
    temporal: Client | None,
    namespace: str,
    queues: Sequence[QueueCheck],
    timeout_s: float = CHECK_TIMEOUT_S,
) -> Readiness:
    checks: dict[str, Awaitable[str | None]] = {"store": _store(store)}
    if temporal is not None:
        checks["temporal"] = _temporal(temporal)
        for queue in queues:
            checks[f"queue:{queue.name}"] = _pollers(temporal, namespace, queue)
    names = list(checks)
    outcomes = await asyncio.gather(*(_bounded(checks[n], timeout_s) for n in names))
    results: dict[str, dict[str, object]] = {}
    for name, problem in zip(names, outcomes, strict=True):
        results[name] = {"ok": True} if problem is None else {"ok": False, "problem": problem}
    return Readiness(all(r["ok"] for r in results.values()), results)


async def _bounded(check: Awaitable[str | None], timeout_s: float) -> str | None:
    try:
        return await asyncio.wait_for(check, timeout_s)
    except TimeoutError:
        return f"no answer within {timeout_s:g} s"
    except Exception as error:  # the problem's kind only: a driver's message may hold a URL
        return f"unreachable ({type(error).__name__})"


async def _store(store: Store) -> str | None:
    await store.audit_head()
    return None


async def _temporal(client: Client) -> str | None:
    healthy = await client.service_client.check_health()
    return None if healthy else "the frontend reports it is not serving"


async def _pollers(client: Client, namespace: str, queue: QueueCheck) -> str | None:
    from temporalio.api.enums.v1 import TaskQueueType
    from temporalio.api.taskqueue.v1 import TaskQueue
    from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest

    from orchestrator.temporal.client import Role

    kind = (
        TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW
        if queue.role == Role.TRIAGE
        else TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY
    )
    answer = await client.workflow_service.describe_task_queue(
        DescribeTaskQueueRequest(
            namespace=namespace, task_queue=TaskQueue(name=queue.name), task_queue_type=kind
        )
    )
    if answer.pollers:
        return None
    return f"no {queue.role.value} worker polls it"
