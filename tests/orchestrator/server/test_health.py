"""`/healthz` and `/readyz` on a real server (uvicorn on loopback), with real workers on the
session's Temporal dev server: alive depends on nothing; ready names every check, 200 when the
store, Temporal and each expected queue's pollers answer, 503 otherwise."""

from __future__ import annotations

import asyncio
import socket
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import cast

import httpx
import pytest
from sqlalchemy.exc import OperationalError
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from orchestrator.approvals.directory import ApproverDirectory
from orchestrator.approvals.notifier import LogNotifier
from orchestrator.approvals.service import ApprovalService
from orchestrator.composition import open_checkpointer, open_store
from orchestrator.observability.health import QueueCheck, readiness
from orchestrator.server.app import ServerDeps, create_app
from orchestrator.server.tokens import ApiTokens
from orchestrator.settings import GarrisonSettings, TemporalSettings
from orchestrator.store.repository import Store
from orchestrator.temporal.client import Role, task_queue
from orchestrator.worker import ALL_ROLES, WorkerDeps, build_workers
from simulations.routing import RecordedBackends
from tools.emulators.serve import serve


def settings_for(env: WorkflowEnvironment, tmp_path: Path) -> GarrisonSettings:
    address = env.client.service_client.config.target_host
    return GarrisonSettings(
        data_dir=tmp_path / "data",
        temporal=TemporalSettings(address=address, task_queue_prefix=f"h{uuid.uuid4().hex[:8]}"),
    )


def queues(settings: GarrisonSettings) -> tuple[QueueCheck, ...]:
    return tuple(QueueCheck(role, task_queue(settings.temporal, role)) for role in ALL_ROLES)


async def serving(
    stack: AsyncExitStack, store: Store, client: Client, checks: tuple[QueueCheck, ...]
) -> httpx.AsyncClient:
    deps = ServerDeps(
        store=store,
        approvals=ApprovalService(client, store, ApproverDirectory(groups={}), "garrison-agent"),
        tokens=ApiTokens(),
        temporal=client,
        ready_queues=checks,
    )
    url = await stack.enter_async_context(serve(create_app(deps)))
    stack.push_async_callback(deps.aclose)
    return await stack.enter_async_context(httpx.AsyncClient(base_url=url, timeout=30))


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'g.db'}")
    yield opened
    await opened.close()


async def ready_within(http: httpx.AsyncClient, timeout_s: float = 30.0) -> httpx.Response:
    """Workers register as pollers once their first long poll reaches the server."""
    deadline = time.monotonic() + timeout_s
    while True:
        answer = await http.get("/readyz")
        if answer.status_code == 200 or time.monotonic() > deadline:
            return answer
        await asyncio.sleep(0.05)


async def test_ready_with_every_roles_worker_polling_and_alive_without_a_token(
    temporal_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    settings = settings_for(temporal_env, tmp_path)
    async with AsyncExitStack() as stack:
        store = await open_store(settings)
        stack.push_async_callback(store.close)
        checkpointer = await stack.enter_async_context(open_checkpointer(settings))
        deps = WorkerDeps(store, RecordedBackends([]), checkpointer, LogNotifier())
        for worker in build_workers(temporal_env.client, settings.temporal, deps):
            await stack.enter_async_context(worker)
        http = await serving(stack, store, temporal_env.client, queues(settings))

        alive = await http.get("/healthz")
        ready = await ready_within(http)

    assert (alive.status_code, alive.json()) == (200, {"status": "ok"})
    assert ready.status_code == 200, ready.text
    body = ready.json()
    assert body["status"] == "ready"
    prefix = settings.temporal.task_queue_prefix
    assert set(body["checks"]) == {
        "store",
        "temporal",
        *(f"queue:{prefix}-{role.value}" for role in ALL_ROLES),
    }
    assert all(check == {"ok": True} for check in body["checks"].values())


async def test_a_queue_nobody_polls_is_not_ready_and_named(
    temporal_env: WorkflowEnvironment, tmp_path: Path, store: Store
) -> None:
    settings = settings_for(temporal_env, tmp_path)
    async with AsyncExitStack() as stack:
        http = await serving(stack, store, temporal_env.client, queues(settings)[2:])
        answer = await http.get("/readyz")
        alive = await http.get("/healthz")

    assert answer.status_code == 503
    body = answer.json()
    assert body["status"] == "not ready"
    actions = f"queue:{task_queue(settings.temporal, Role.ACTIONS)}"
    assert body["checks"][actions] == {"ok": False, "problem": "no actions worker polls it"}
    assert body["checks"]["store"] == {"ok": True}
    assert alive.status_code == 200  # alive all the same: nothing to restart


async def test_unreachable_temporal_is_not_ready(tmp_path: Path, store: Store) -> None:
    with socket.socket() as sock:  # a port nothing answers on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = await Client.connect(f"127.0.0.1:{port}", lazy=True)
    async with AsyncExitStack() as stack:
        http = await serving(stack, store, client, ())
        answer = await http.get("/readyz")

    assert answer.status_code == 503
    checks = answer.json()["checks"]
    assert checks["temporal"]["ok"] is False and checks["store"] == {"ok": True}


class FailingStore:
    """A database that went away: every read raises the driver's error."""

    async def audit_head(self) -> None:
        raise OperationalError("SELECT 1", {}, ConnectionRefusedError("postgres://secret@db"))


async def test_a_store_that_fails_is_named_without_the_drivers_message() -> None:
    found = await readiness(cast(Store, FailingStore()), None, "default", ())
    assert not found.ready
    assert found.as_json() == {
        "status": "not ready",
        "checks": {"store": {"ok": False, "problem": "unreachable (OperationalError)"}},
    }
