"""Garrison's HTTP API (FastAPI): alerts in, Slack interactivity, approvals, incidents, health.

`create_app(deps)` builds the app from already-open dependencies, so tests and `garrison server`
compose it the same way. Every `/api` endpoint needs a bearer token (`tokens.py`); `/slack/*`
is authenticated by Slack's signature instead; `/console` (the analysts' web console,
`orchestrator.console`) by a signed-in session; `/healthz`, `/readyz` (`instruments.py`)
and the OpenAPI document are open. `/taxii2/` (`taxii.py`) is the TAXII 2.1 server, on bearer
tokens with the `intel:read` and `intel:write` scopes.
Errors are JSON `{"detail": ...}` with a 4xx status naming the problem; an unexpected failure is
logged and answered 500 without internals.

In front of every route sits the edge (`edge.py`): the body cap, and the audit of every refusal
through `ServerDeps.refusals`, which whoever serves the app closes (`aclose`) when it stops, so
that the counts of collapsed refusals are written.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError

from orchestrator.approvals.service import ApprovalService
from orchestrator.console.auth import ConsoleConfig
from orchestrator.ingest.sink import AlertSink
from orchestrator.ingest.sources import IngestSources
from orchestrator.intel.config import IntelConfig
from orchestrator.observability import tracing
from orchestrator.server.edge import EdgeGuard
from orchestrator.server.refusals import RefusalAudit
from orchestrator.server.tokens import ApiTokens
from orchestrator.slack.notifier import SlackNotifier
from orchestrator.slack.webapi import SlackError
from orchestrator.store.repository import Store

if TYPE_CHECKING:
    from temporalio.client import Client

    from orchestrator.observability.health import QueueCheck

log = logging.getLogger("garrison.server")
USERGROUP_TTL_S = 60.0
STORE_RETRY_AFTER_S = "2"  # a database failing over or restarting is back within seconds


class BackgroundTasks:
    """Work that outlives a request (a Slack click is acknowledged before it is applied)."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()

    def spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("background task failed", exc_info=task.exception())

    async def wait(self, timeout_s: float = 10.0) -> None:
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=timeout_s)


@dataclass
class SlackRuntime:
    signing_secret: str
    notifier: SlackNotifier
    _cache: dict[str, tuple[float, frozenset[str]]] = field(default_factory=dict)

    async def usergroups_of(self, slack_user: str) -> frozenset[str]:
        """The directory's Slack user groups this user is in (members cached for a minute)."""
        directory = self.notifier.directory
        wanted = {s for g in directory.groups for s in directory.usergroups_of(g)}
        found: set[str] = set()
        for usergroup in sorted(wanted):
            cached = self._cache.get(usergroup)
            if cached is None or time.monotonic() - cached[0] > USERGROUP_TTL_S:
                try:
                    members = await self.notifier.client.usergroup_members(usergroup)
                except SlackError as error:  # fail closed: no membership we cannot read
                    log.warning("cannot read Slack user group %s: %s", usergroup, error)
                    continue
                cached = (time.monotonic(), members)
                self._cache[usergroup] = cached
            if slack_user in cached[1]:
                found.add(usergroup)
        return frozenset(found)


@dataclass
class ServerDeps:
    store: Store
    approvals: ApprovalService
    tokens: ApiTokens
    slack: SlackRuntime | None = None
    tasks: BackgroundTasks = field(default_factory=BackgroundTasks)
    ingest: AlertSink | None = None  # None: this server takes no alerts (404)
    sources: IngestSources = field(default_factory=IngestSources)
    console: ConsoleConfig = field(default_factory=ConsoleConfig)
    # The TAXII collections served under /taxii2/ and the sharing policy (`docs/intel.md`).
    intel: IntelConfig = field(default_factory=IntelConfig)
    # What `/readyz` checks beside the store: Temporal, and the queues that must be polled.
    temporal: Client | None = None
    namespace: str = "default"
    ready_queues: tuple[QueueCheck, ...] = ()
    refusals: RefusalAudit = field(init=False)

    def __post_init__(self) -> None:
        self.refusals = RefusalAudit(self.store)
        # sessions in the store: every replica on this database knows every sign-in
        self.console.keep_sessions_in(self.store.console_sessions)

    async def aclose(self) -> None:
        """What the server does when it stops: finish background work, write pending counts."""
        await self.tasks.wait()
        await self.refusals.aclose()
        await self.console.aclose()


def create_app(deps: ServerDeps) -> FastAPI:
    from orchestrator.console.routes import install_console
    from orchestrator.server.alerts import dead_letter_oversized
    from orchestrator.server.alerts import router as alerts_router
    from orchestrator.server.api import router as api_router
    from orchestrator.server.instruments import router as instruments_router
    from orchestrator.server.slack_interactions import router as slack_router
    from orchestrator.server.taxii import install_taxii

    app = FastAPI(
        title="Garrison",
        summary="Approvals, incidents and Slack interactivity of a Garrison deployment.",
        version="1",
        docs_url=None,  # Swagger UI and ReDoc load scripts from a CDN: not on a SOC's network
        redoc_url=None,
    )
    app.state.deps = deps
    if tracing.enabled():  # off: not even a pass-through layer
        app.add_middleware(tracing.TracingMiddleware)
    app.add_middleware(
        EdgeGuard,
        refusals=deps.refusals,
        on_too_large=lambda scope: dead_letter_oversized(deps, scope),
    )
    app.include_router(slack_router)
    app.include_router(api_router)
    app.include_router(alerts_router)
    install_taxii(app)
    install_console(app)
    app.include_router(instruments_router)

    @app.exception_handler(RequestValidationError)
    async def invalid(_request: Request, error: RequestValidationError) -> JSONResponse:
        problems = [
            {"field": ".".join(str(p) for p in e["loc"]), "problem": e["msg"]}
            for e in error.errors()
        ]
        return JSONResponse({"detail": problems}, status_code=422)

    @app.exception_handler(DBAPIError)
    async def store_unavailable(_request: Request, error: DBAPIError) -> JSONResponse:
        # A database that went away mid-request (a restart, a cut session) is the store being
        # unavailable, not a server fault: the client retries; what was committed stays committed.
        log.warning("store unavailable: %s", type(error.orig or error).__name__)
        return JSONResponse(
            {"detail": "the store could not be reached: nothing was changed; retry"},
            status_code=503,
            headers={"Retry-After": STORE_RETRY_AFTER_S},
        )

    return app
