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
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer
import uvicorn

from orchestrator.approvals.directory import ApproverDirectory, DirectoryError
from orchestrator.backends import Backends
from orchestrator.cli_common import fail, out, settings_or_exit
from orchestrator.cli_worker import recorded_backends, vendor_backends
from orchestrator.server.tokens import ApiTokens, TokensError, digest, new_token
from orchestrator.settings import GarrisonSettings


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
) -> None:
    """Run Garrison's HTTP API (Slack interactivity, approvals, incidents) with its workers."""
    settings = settings_or_exit()
    directory = _directory(settings)
    tokens = _tokens(settings)
    if settings.slack.enabled and directory.slack is None:
        fail(
            f"{settings.approvers_file}: slack.team_id is required when Slack is configured "
            "(clicks from any other workspace are refused)"
        )
    backends = recorded_backends(incidents, None, None) if incidents else vendor_backends(settings)
    asyncio.run(_serve(settings, directory, tokens, backends, host, port))


def api_token(
    name: Annotated[str, typer.Argument(help="The identity the token stands for.")],
) -> None:
    """Print a new API token for NAME and the line to add to GARRISON_API_TOKENS_FILE."""
    token = new_token()
    out.print(f"token (give it to {name}, it is shown once): {token}", markup=False)
    out.print(f'tokens file line:  {name}: "{digest(token)}"', markup=False)


def _directory(settings: GarrisonSettings) -> ApproverDirectory:
    if settings.approvers_file is None:
        fail("GARRISON_APPROVERS_FILE is required: the approver directory (see docs/operators.md)")
    try:
        return ApproverDirectory.load(settings.approvers_file)
    except DirectoryError as error:
        fail(str(error))


def _tokens(settings: GarrisonSettings) -> ApiTokens:
    if settings.api_tokens_file is None:
        return ApiTokens()  # the API answers 401 to everyone; Slack and the CLI still work
    try:
        return ApiTokens.load(settings.api_tokens_file)
    except TokensError as error:
        fail(str(error))


class _ApiServer(uvicorn.Server):
    """uvicorn's server without its signal capture: uvicorn re-raises a captured SIGTERM after
    shutting down, which would kill the process before the workers and the store close."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    def stop(self) -> None:
        self.should_exit = True


async def _serve(
    settings: GarrisonSettings,
    directory: ApproverDirectory,
    tokens: ApiTokens,
    backends: Backends,
    host: str,
    port: int,
) -> None:
    from orchestrator.approvals.notifier import ApprovalNotifier, LogNotifier
    from orchestrator.approvals.service import ApprovalService
    from orchestrator.composition import open_checkpointer, open_store
    from orchestrator.server.app import ServerDeps, SlackRuntime, create_app
    from orchestrator.slack.notifier import SlackNotifier
    from orchestrator.slack.webapi import SlackWebClient
    from orchestrator.temporal.client import temporal_client
    from orchestrator.worker import WorkerDeps, build_workers

    store = await open_store(settings)
    async with contextlib.AsyncExitStack() as stack:
        stack.push_async_callback(store.close)
        close_backends = getattr(backends, "aclose", None)
        if close_backends is not None:
            stack.push_async_callback(close_backends)
        slack: SlackRuntime | None = None
        notifier: ApprovalNotifier = LogNotifier()
        if settings.slack.enabled:
            assert settings.slack.bot_token and settings.slack.signing_secret
            assert settings.slack.channel
            client = SlackWebClient(settings.slack.api_url, settings.slack.bot_token)
            stack.push_async_callback(client.aclose)
            slack_notifier = SlackNotifier(client, store, directory, settings.slack.channel)
            slack = SlackRuntime(settings.slack.signing_secret.get_secret_value(), slack_notifier)
            notifier = slack_notifier
        checkpointer = await stack.enter_async_context(open_checkpointer(settings))
        temporal, embedded = await stack.enter_async_context(temporal_client(settings))
        if embedded is not None and embedded.ui_url:
            out.print(f"Temporal Web UI: {embedded.ui_url}")
        for worker in build_workers(
            temporal, settings.temporal, WorkerDeps(store, backends, checkpointer, notifier)
        ):
            await stack.enter_async_context(worker)
        deps = ServerDeps(
            store=store,
            approvals=ApprovalService(temporal, store, directory, settings.agent_identity),
            tokens=tokens,
            slack=slack,
        )
        config = uvicorn.Config(
            create_app(deps), host=host, port=port, log_level="warning", lifespan="off"
        )
        api = _ApiServer(config)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, api.stop)
        out.print(
            f"garrison server listening on http://{host}:{port}"
            f" (Slack {'on' if slack else 'off'}; API tokens: {len(tokens.tokens)})"
        )
        await api.serve()
        await deps.tasks.wait()
