"""Temporal clients for Garrison, and the names of its task queues.

`temporal_client(settings)` is what composition roots use: it starts (or reuses) the embedded dev
server when no address is configured, else connects to the configured cluster, always with the
pydantic data converter. `task_queue(settings, Role.ACTIONS)` names a role's queue.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from enum import StrEnum
from typing import TYPE_CHECKING

from temporalio.client import Client
from temporalio.service import TLSConfig

from orchestrator.observability.tracing import temporal_interceptors
from orchestrator.settings import ConfigError, GarrisonSettings, TemporalSettings
from orchestrator.temporal.converter import DATA_CONVERTER
from orchestrator.temporal.embedded import EmbeddedTemporal

if TYPE_CHECKING:
    from temporalio.runtime import Runtime


class Role(StrEnum):
    """A worker role; each has its own task queue so workers scale separately."""

    TRIAGE = "triage"
    AGENTS = "agents"
    ACTIONS = "actions"


def task_queue(settings: TemporalSettings, role: Role) -> str:
    """`<prefix>-<role>`, e.g. `garrison-actions`."""
    return f"{settings.task_queue_prefix}-{Role(role)}"


def tls_config(settings: TemporalSettings) -> TLSConfig | None:
    """The TLS configuration from the certificate files, or None when TLS is not asked for."""
    if not settings.uses_tls:
        return None
    return TLSConfig(
        server_root_ca_cert=settings.tls_ca.read_bytes() if settings.tls_ca else None,
        client_cert=settings.tls_cert.read_bytes() if settings.tls_cert else None,
        client_private_key=settings.tls_key.read_bytes() if settings.tls_key else None,
    )


async def connect(
    settings: TemporalSettings, address: str, runtime: Runtime | None = None
) -> Client:
    """A client for `address` in the configured namespace, with TLS or API key if configured;
    `runtime`: the SDK runtime its workers record metrics to (None: the SDK's default)."""
    api_key = settings.api_key.get_secret_value() if settings.api_key else None
    # With an API key and no explicit TLS, None lets the SDK turn TLS on (Temporal Cloud).
    tls: TLSConfig | bool | None = tls_config(settings) or (None if api_key else False)
    return await Client.connect(
        address,
        namespace=settings.namespace,
        api_key=api_key,
        tls=tls,
        data_converter=DATA_CONVERTER,
        runtime=runtime,
        interceptors=temporal_interceptors(),  # tracing's, when it is on
    )


class TemporalUnreachable(ConfigError):
    """The configured Temporal did not answer at start-up: the command stops with this one line
    (the address and the SDK's reason), not a traceback."""


async def connect_or_explain(
    settings: TemporalSettings, address: str, runtime: Runtime | None = None
) -> Client:
    """`connect`, with a failure to reach the cluster turned into `TemporalUnreachable`."""
    try:
        return await connect(settings, address, runtime)
    except RuntimeError as error:  # the SDK's connection failures are RuntimeError
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise TemporalUnreachable(
            f"Temporal at {address} (namespace {settings.namespace}) is unreachable: {reason};"
            " start it or correct GARRISON_TEMPORAL_ADDRESS, nothing was started"
        ) from error


@asynccontextmanager
async def temporal_client(
    settings: GarrisonSettings, runtime: Runtime | None = None
) -> AsyncIterator[tuple[Client, EmbeddedTemporal | None]]:
    """Yield a client and the embedded server it runs on (None for a configured cluster).

    An embedded server started here is stopped on exit; a reused one is left running.
    """
    if settings.temporal.address is not None:
        address = settings.temporal.address
        yield await connect_or_explain(settings.temporal, address, runtime), None
        return
    async with EmbeddedTemporal.from_settings(settings) as embedded:
        yield await connect(settings.temporal, embedded.address, runtime), embedded
