"""`garrison worker`: run workers for some roles against the configured Temporal (the embedded
dev server when none is configured: started, or reused when one is running), built by the same
runtime as `garrison server` (`orchestrator.runtime`): same store, model and approval channel."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from orchestrator.cli_common import fail, settings_or_exit

if TYPE_CHECKING:
    from orchestrator.backends import Backends
    from orchestrator.settings import GarrisonSettings
    from orchestrator.temporal.client import Role

out = Console(stderr=True)


def worker(
    queues: Annotated[
        str, typer.Option(help="Comma-separated roles to serve: triage,agents,actions.")
    ] = "triage,agents,actions",
    incidents: Annotated[
        list[Path] | None,
        typer.Option(
            "--incidents",
            help="Serve in-memory twins seeded from these recorded incidents instead of the "
            "configured vendors.",
        ),
    ] = None,
    journal_dir: Annotated[
        Path | None,
        typer.Option(help="Keep the twins' state in files here, shared by every worker process."),
    ] = None,
    faults: Annotated[
        str | None,
        typer.Option(
            help="Twin faults for resilience tests, e.g. 'hang_after_apply=isolate_host'."
        ),
    ] = None,
) -> None:
    """Run Garrison workers until interrupted."""
    from orchestrator.settings import ConfigError, check_playbook_routing
    from orchestrator.temporal.client import Role
    from playbooks.routing import routing_path

    try:
        roles = [Role(q.strip()) for q in queues.split(",") if q.strip()]
    except ValueError:
        fail(f"--queues {queues!r}: roles are {', '.join(r.value for r in Role)}")
    settings = settings_or_exit()
    if Role.AGENTS in roles:
        try:  # the playbooks (entry points too) and the routing, before taking any work
            check_playbook_routing(routing_path())
        except ConfigError as error:
            fail(str(error))
    backends = (
        recorded_backends(incidents, journal_dir, faults)
        if incidents
        else vendor_backends(settings)
    )
    try:
        asyncio.run(_serve(settings, roles, backends))
    except ConfigError as error:
        fail(str(error))


def vendor_backends(settings: GarrisonSettings) -> Backends:
    """Production: the configured vendor adapters and the organisation's inventory file."""
    from orchestrator.vendor_backends import (
        BackendConfigError,
        VendorBackends,
        choose_vendors,
        load_inventory,
    )
    from tools.vendor_settings import VendorConfigError
    from tools.vendors import VENDORS

    if settings.inventory_file is None:
        fail(
            "GARRISON_INVENTORY_FILE is required with vendor backends (or serve recorded "
            "incidents with --incidents PATH)"
        )
    try:
        return VendorBackends(
            choose_vendors(settings, VENDORS), load_inventory(settings.inventory_file)
        )
    except (BackendConfigError, VendorConfigError) as error:
        fail(str(error))


def recorded_backends(
    incident_paths: list[Path], journal_dir: Path | None, fault_spec: str | None
) -> Backends:
    """The in-memory twins of recorded incidents (a composition root may import simulations)."""
    from simulations.loader import load_all
    from simulations.routing import RecordedBackends
    from tools.journal import TwinFaults

    loaded = load_all(incident_paths)
    if loaded.problems:
        fail("; ".join(str(p) for p in loaded.problems))
    try:
        faults = TwinFaults.from_env_string(fault_spec) if fault_spec else None
    except ValueError as error:
        fail(str(error))
    if journal_dir is not None:
        journal_dir.mkdir(parents=True, exist_ok=True)
    return RecordedBackends(loaded.incidents, journal_dir=journal_dir, faults=faults)


async def _serve(settings: GarrisonSettings, roles: Sequence[Role], backends: Backends) -> None:
    from orchestrator.runtime import open_runtime, settle_heap
    from orchestrator.temporal.client import Role

    # A process running the incidents' workflows also dispatches committed alerts to them.
    async with open_runtime(
        settings, backends, roles=roles, dispatch=Role.TRIAGE in roles
    ) as runtime:
        if runtime.embedded is not None and runtime.embedded.ui_url:
            out.print(f"Temporal Web UI: {runtime.embedded.ui_url}")
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        if settings.metrics_port is not None:
            from orchestrator.observability.metrics import serve_port

            serve_port(settings.metrics_port)
            out.print(f"metrics on http://0.0.0.0:{settings.metrics_port}/metrics")
        slack = "Slack" if runtime.slack else "the log"
        settle_heap()
        out.print(f"worker ready: {', '.join(r.value for r in roles)} (approvals to {slack})")
        await stop.wait()
