"""`garrison server`: the HTTP API and every worker role in one process, against the configured
Temporal (the embedded dev server by default): a whole single-machine deployment in one command.

With Slack configured (`GARRISON_SLACK_*`), approval requests are posted to the channel as cards
and clicks arrive at `POST /slack/interactions`; without it they are logged and decided from the
CLI or the API.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from orchestrator.cli_common import fail, out, settings_or_exit

if TYPE_CHECKING:
    import uvicorn

    from orchestrator.approvals.directory import ApproverDirectory
    from orchestrator.backends import Backends
    from orchestrator.ingest.sources import IngestSources
    from orchestrator.intel.config import IntelConfig
    from orchestrator.observability.health import QueueCheck
    from orchestrator.server.tokens import ApiTokens
    from orchestrator.settings import GarrisonSettings
    from orchestrator.temporal.client import Role


def server(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 8080,
    incidents: Annotated[
        list[Path] | None,
        typer.Option(
            "--incidents",
            help="Serve in-memory twins seeded from these recorded incidents instead of the "
            "configured vendors (a demo, or a rehearsal with `garrison incidents replay`).",
        ),
    ] = None,
    workers: Annotated[
        bool,
        typer.Option(
            "--workers/--no-workers",
            help="Run every worker role in this process too (--no-workers: the API only, beside "
            "`garrison worker` processes).",
        ),
    ] = True,
) -> None:
    """Run Garrison's HTTP API (alerts, Slack, approvals, incidents), the analysts' console
    (/console) and the workers."""
    from orchestrator.cli_worker import recorded_backends, vendor_backends
    from orchestrator.runtime import load_directory
    from orchestrator.settings import ConfigError

    settings = settings_or_exit()
    if settings.approvers_file is None:
        fail("GARRISON_APPROVERS_FILE is required: the approver directory (see docs/operators.md)")
    try:
        directory = load_directory(settings)  # checked before anything starts
    except ConfigError as error:
        fail(str(error))
    assert directory is not None
    tokens = _tokens(settings)
    _sources(settings)  # a wrong sources file fails before anything starts
    _intel(settings)  # and so does a wrong intelligence file
    if not workers:
        backends = None
    elif incidents:
        backends = recorded_backends(incidents, None, None)
    else:
        backends = vendor_backends(settings)
    try:
        asyncio.run(_serve(settings, directory, tokens, backends, host, port))
    except ConfigError as error:
        fail(str(error))


def api_token(
    name: Annotated[str, typer.Argument(help="The identity the token stands for.")],
    scope: Annotated[
        list[str] | None,
        typer.Option(
            "--scope",
            help="What the token may do: read, approve, ingest, intel:read, intel:write (repeat "
            "it). Default: read and approve; a sender of alerts gets --scope ingest only.",
        ),
    ] = None,
) -> None:
    """Print a new API token for NAME and the line to add to GARRISON_API_TOKENS_FILE."""
    from orchestrator.server.tokens import Scope, digest, new_token

    try:
        scopes = [Scope(s) for s in scope] if scope else []
    except ValueError:
        fail(f"--scope {scope}: scopes are {', '.join(s.value for s in Scope)}")
    token = new_token()
    out.print(f"token (give it to {name}, it is shown once): {token}", markup=False)
    if scopes:
        listed = ", ".join(dict.fromkeys(s.value for s in scopes))
        line = f'{name}: {{digest: "{digest(token)}", scopes: [{listed}]}}'
    else:
        line = f'{name}: "{digest(token)}"'
    out.print(f"tokens file line:  {line}", markup=False)


def _tokens(settings: GarrisonSettings) -> ApiTokens:
    from orchestrator.server.tokens import ApiTokens, TokensError

    if settings.api_tokens_file is None:
        return ApiTokens()  # the API answers 401 to everyone; Slack and the CLI still work
    try:
        return ApiTokens.load(settings.api_tokens_file)
    except TokensError as error:
        fail(str(error))


def _intel(settings: GarrisonSettings) -> IntelConfig:
    from orchestrator.intel.config import IntelConfig
    from orchestrator.intel.policy import PolicyError

    try:
        return IntelConfig.load(settings.intel_file)
    except PolicyError as error:
        fail(str(error))


def _sources(settings: GarrisonSettings) -> IngestSources:
    from orchestrator.ingest.sources import IngestSources, SourcesError

    if settings.ingest.sources_file is None:
        return IngestSources()  # no signed webhooks; bearer tokens with the ingest scope still work
    from orchestrator.observability.logs import protected

    try:
        return protected(IngestSources.load(settings.ingest.sources_file))
    except SourcesError as error:
        fail(str(error))


def ready_queues(settings: GarrisonSettings, running: Sequence[Role]) -> tuple[QueueCheck, ...]:
    """The task queues `/readyz` needs polled: `GARRISON_READY_ROLES`'s roles, else the roles
    this process runs (an API-only server is ready without workers: alerts it takes are kept)."""
    from orchestrator.observability.health import QueueCheck
    from orchestrator.temporal.client import Role, task_queue

    roles: Sequence[Role] = running
    if settings.ready_roles is not None:  # validated by the settings
        roles = [Role(name) for name in settings.ready_roles.split(",") if name]
    return tuple(QueueCheck(role, task_queue(settings.temporal, role)) for role in roles)


def _api_server(config: uvicorn.Config) -> uvicorn.Server:
    import uvicorn

    class ApiServer(uvicorn.Server):
        """uvicorn's server without its signal capture: uvicorn re-raises a captured SIGTERM
        after shutting down, which would kill the process before the workers and the store
        close."""

        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield

    return ApiServer(config)


async def _serve(
    settings: GarrisonSettings,
    directory: ApproverDirectory,
    tokens: ApiTokens,
    backends: Backends | None,
    host: str,
    port: int,
) -> None:
    import uvicorn

    from orchestrator.approvals.service import ApprovalService
    from orchestrator.cli_console import passwords_path
    from orchestrator.console.auth import DEFAULT_BASELINES, ConsoleConfig
    from orchestrator.console.oidc import oidc_provider
    from orchestrator.console.playbook_progress import ProgressReader
    from orchestrator.runtime import open_runtime, settle_heap
    from orchestrator.server.app import ServerDeps, create_app

    async with open_runtime(settings, backends, run_workers=backends is not None) as runtime:
        if runtime.embedded is not None and runtime.embedded.ui_url:
            out.print(f"Temporal Web UI: {runtime.embedded.ui_url}")
        deps = ServerDeps(
            store=runtime.store,
            approvals=ApprovalService(
                runtime.temporal, runtime.store, directory, settings.agent_identity
            ),
            tokens=tokens,
            slack=runtime.slack,
            ingest=runtime.ingest,
            sources=_sources(settings),
            console=ConsoleConfig(
                passwords_file=passwords_path(settings),
                cookie_secure=settings.console.cookie_secure,
                idle_s=settings.console.session_idle_s,
                max_s=settings.console.session_max_s,
                temporal_ui_url=settings.console.temporal_ui_url
                or (runtime.embedded.ui_url if runtime.embedded else None),
                temporal_namespace=settings.temporal.namespace,
                refresh_s=settings.console.refresh_s,
                baselines_dir=settings.console.baselines_dir or DEFAULT_BASELINES,
                oidc=oidc_provider(settings.console),
                progress=ProgressReader(settings.effective_database_url),
            ),
            temporal=runtime.temporal,
            namespace=settings.temporal.namespace,
            ready_queues=ready_queues(settings, runtime.roles),
            intel=_intel(settings),
        )
        config = uvicorn.Config(
            create_app(deps), host=host, port=port, log_level="warning", lifespan="off"
        )
        api = _api_server(config)

        def stop() -> None:
            api.should_exit = True

        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop)
        roles = ", ".join(r.value for r in runtime.roles) or "none"
        settle_heap()
        out.print(
            f"garrison server listening on http://{host}:{port} (console: /console)"
            f" (Slack {'on' if runtime.slack else 'off'}; API tokens: {len(tokens.tokens)};"
            f" worker roles: {roles})"
        )
        await api.serve()
        await deps.aclose()  # background work done, counts of collapsed refusals written
