"""The operators' endpoints, open like a load balancer and Kubernetes expect (no token):

- `GET /healthz`: the process is alive (200 `{"status": "ok"}`); it depends on nothing, so that
  a database outage never has every pod restarted.
- `GET /readyz`: 200 when the store and Temporal answer and every role's task queue that must be
  served has a poller, else 503; either way the JSON names each check (`observability/health.py`).
- `GET /metrics`: Prometheus's text format, this process's counters and the store's state
  (`observability/metrics.py`): counts and durations only, no incident, host or person.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from orchestrator.observability.health import readiness
from orchestrator.server.app import ServerDeps

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", responses={503: {"description": "a dependency is not ready"}})
async def readyz(request: Request) -> JSONResponse:
    deps: ServerDeps = request.app.state.deps
    found = await readiness(deps.store, deps.temporal, deps.namespace, deps.ready_queues)
    return JSONResponse(found.as_json(), status_code=200 if found.ready else 503)


@router.get("/metrics", response_class=Response)
async def metrics(request: Request) -> Response:
    from orchestrator.observability.metrics import (
        CONTENT_TYPE,
        REGISTRY,
        STORE_REGISTRY,
        exposition,
        refresh_from_store,
    )

    deps: ServerDeps = request.app.state.deps
    await refresh_from_store(deps.store)
    return Response(exposition(REGISTRY, STORE_REGISTRY), media_type=CONTENT_TYPE)
