"""`garrison incidents replay`: hand recorded incidents' alerts to the running system, through
ingestion (the same deduplication and grouping as alerts sent over HTTP), for rehearsals and demos.

Without `--id`, each recording opens a new incident whose id ends in `--<recorded id>`, so the
twins of a server or worker started with `--incidents` serve it. With `--id`, the recordings'
alerts are redelivered to that existing incident: in its scope, with its sender's grouping, so an
exact re-send is deduplicated alert by alert, `--new-uids` makes them new alerts that join it, and
a closed incident gets whatever ingestion does with late alerts. The workflow input (its
activities' timeouts and retries included) is the deployment's own, from the settings, as the
server's dispatcher builds it.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from orchestrator.cli_common import fail, open_store, out
from orchestrator.settings import GarrisonSettings

if TYPE_CHECKING:
    from orchestrator.store.repository import Store
    from simulations.loader import LoadedIncident
    from simulations.replay import ReplayContext

CORRELATION_KEY = "corr:"


async def replay(
    settings: GarrisonSettings,
    paths: list[Path],
    incident_id: str | None = None,
    new_uids: bool = False,
) -> None:
    from orchestrator.ingest.inputs import live_workflow_input
    from orchestrator.policy.model import load_policy
    from orchestrator.temporal.client import connect
    from orchestrator.temporal.embedded import running_address
    from simulations.loader import load_all
    from simulations.runner import replay_context

    loaded = load_all(paths)
    if loaded.problems:
        fail("; ".join(str(p) for p in loaded.problems))
    if not loaded.incidents:
        fail("no recorded incident under " + ", ".join(str(p) for p in paths))
    async with open_store(settings) as store:
        grouping = None if incident_id is None else await _target(store, incident_id)
        address = settings.temporal.address or await running_address(settings)
        if address is None:
            fail("no running Garrison found: start `garrison server` or `garrison worker` first")
        client = await connect(settings.temporal, address)
        policy = load_policy(settings.policy_file)
        # Every incident's input is the deployment's, as the server's dispatcher builds it.
        ctx = replace(
            replay_context(client, store, settings, policy, timeout_s=0),
            input_for=live_workflow_input(settings, policy),
        )
        if grouping is None:
            await _start(ctx, loaded.incidents)
        else:
            await _redeliver(ctx, loaded.incidents, grouping, new_uids)


async def _start(ctx: ReplayContext, incidents: list[LoadedIncident]) -> None:
    from simulations.replay import start_incident

    run = uuid.uuid4().hex[:8]
    for incident in incidents:
        incident_id = f"live-{run}--{incident.spec.id}"
        await start_incident(ctx, incident, incident_id, None)
        out.print(f"started {incident_id}", markup=False)


async def _target(store: Store, incident_id: str) -> tuple[str, str]:
    """(scope, correlation) to redeliver to `incident_id`; exits naming why there is none."""
    if await store.get_incident(incident_id) is None:
        fail(f"--id {incident_id}: no such incident in the store")
    grouping = await _correlation(store, incident_id)
    if grouping is None:
        fail(
            f"--id {incident_id}: its alerts carried no sender's grouping (a correlation), so "
            "ingestion could not place redelivered alerts in it; replay --id redelivers to "
            "incidents a recording or a correlating sender opened"
        )
    return grouping


async def _redeliver(
    ctx: ReplayContext,
    incidents: list[LoadedIncident],
    grouping: tuple[str, str],
    new_uids: bool,
) -> None:
    from simulations.replay import deliver

    scope, correlation = grouping
    prefix = f"r{uuid.uuid4().hex[:8]}-" if new_uids else ""
    for incident in incidents:
        accepted = await deliver(ctx, incident, scope, correlation, uid_prefix=prefix)
        fresh = len(accepted.alert_ids) - accepted.duplicates
        where = ", ".join(accepted.incidents)
        out.print(
            f"redelivered {len(accepted.alert_ids)} alert(s) of {incident.spec.id} to {where}:"
            f" {fresh} new, {accepted.duplicates} duplicate(s)",
            markup=False,
        )


async def _correlation(store: Store, incident_id: str) -> tuple[str, str] | None:
    """(scope, correlation) of the sender's grouping that names the incident, from ingestion's
    grouping state (the id alone cannot say where its scope ends)."""
    from sqlmodel import col, select
    from sqlmodel.ext.asyncio.session import AsyncSession

    from orchestrator.store.intake_tables import IncidentGroupRow

    query = (
        select(IncidentGroupRow.scope, IncidentGroupRow.key)
        .where(IncidentGroupRow.incident_id == incident_id)
        .where(col(IncidentGroupRow.key).startswith(CORRELATION_KEY))
        .order_by(col(IncidentGroupRow.last_seen).desc())
    )
    async with AsyncSession(store.engine) as session:
        row = (await session.exec(query)).first()
    if row is None:
        return None
    scope, key = row
    return scope, key.removeprefix(CORRELATION_KEY)
