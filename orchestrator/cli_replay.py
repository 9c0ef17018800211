"""`garrison incidents replay`: start recorded incidents on the running system, for rehearsals
and demos. Incident ids end in `--<recorded id>` so the twins of a server or worker started with
`--incidents` serve them."""

from __future__ import annotations

import uuid
from pathlib import Path

from orchestrator.cli_common import fail, open_store, out
from orchestrator.settings import GarrisonSettings


async def replay(settings: GarrisonSettings, paths: list[Path]) -> None:
    from orchestrator.models import ActivityProfile
    from orchestrator.policy.model import load_policy
    from orchestrator.temporal.client import connect
    from orchestrator.temporal.embedded import running_address
    from simulations.loader import load_all
    from simulations.replay import start_incident
    from simulations.runner import replay_context, workflow_input

    loaded = load_all(paths)
    if loaded.problems:
        fail("; ".join(str(p) for p in loaded.problems))
    address = settings.temporal.address or await running_address(settings)
    if address is None:
        fail("no running Garrison found: start `garrison server` or `garrison worker` first")
    client = await connect(settings.temporal, address)
    policy = load_policy(settings.policy_file)
    run = uuid.uuid4().hex[:8]
    async with open_store(settings) as store:
        ctx = replay_context(client, store, settings, policy, timeout_s=0)
        for incident in loaded.incidents:
            incident_id = f"live-{run}--{incident.spec.id}"
            params = workflow_input(
                settings, policy, incident_id, incident.spec.title, ActivityProfile()
            )
            await start_incident(ctx, incident, incident_id, params)
            out.print(f"started {incident_id}", markup=False)
