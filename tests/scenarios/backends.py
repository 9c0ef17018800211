"""The vendor worlds of a scenario run: in-memory twins whose state is journaled to one file per
incident (`<journal dir>/<incident id>.jsonl`), shared by every worker process, so a vendor's state
survives a killed worker and the journal is the vendor's ledger that `verify_run()` reads.

An incident whose id ends in `--<recorded id>` (an alert its sender correlated under that suffix)
is served the twins of that recording, as `garrison worker --incidents` serves it; any other
incident (live grouping: a host, a person, a storm) is served one synthetic world, the hosts and
people the scenario's alerts name, with no telemetry.

Twins keep no state of their own (it folds from the journal), so the ones built for an incident
are dropped when `CACHED` others were used since: a soak's worker serves thousands of incidents,
and its memory must measure Garrison, not this cache.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path
from typing import Any

from simulations.backends import memory_backends
from simulations.loader import LoadedIncident
from simulations.routing import recorded_id
from tools.journal import FileJournal
from tools.models import (
    Asset,
    AssetKind,
    Criticality,
    Environment,
    Identity,
    IdentityKind,
)
from tools.toolsets import ReadTools, ResponseTools

CACHED = 256


def synthetic_world(hosts: list[str], users: list[str]) -> Environment:
    """Low-criticality workstations and standard users: what the scenarios' noise alerts name."""
    return Environment(
        assets=[
            Asset(
                id=h.split(".")[0],
                hostname=h,
                kind=AssetKind.WORKSTATION,
                criticality=Criticality.LOW,
            )
            for h in hosts
        ],
        identities=[Identity(id=u, kind=IdentityKind.USER) for u in users],
    )


class ScenarioBackends:
    """`Backends` for scenario workers (see the module docstring)."""

    def __init__(
        self, world: Environment, recordings: list[LoadedIncident], journal_dir: Path
    ) -> None:
        self._world = world
        self._recordings = {loaded.spec.id: loaded for loaded in recordings}
        self._events: dict[str, list[dict[str, Any]]] = {}  # each recording's, read once
        self._journal_dir = journal_dir
        self._tools: OrderedDict[str, tuple[ReadTools, ResponseTools]] = OrderedDict()

    def _for(self, incident_id: str) -> tuple[ReadTools, ResponseTools]:
        if incident_id in self._tools:
            self._tools.move_to_end(incident_id)
            return self._tools[incident_id]
        journal = FileJournal(self._journal_dir / f"{incident_id}.jsonl")
        loaded = self._recordings.get(recorded_id(incident_id))
        if loaded is None:
            tools = memory_backends(self._world, [], journal=journal)
        else:
            events = self._events.setdefault(loaded.spec.id, list(loaded.telemetry()))
            tools = memory_backends(loaded.spec.environment, events, journal=journal)
        self._tools[incident_id] = tools
        if len(self._tools) > CACHED:
            self._tools.popitem(last=False)
        return tools

    def read_tools(self, incident_id: str) -> ReadTools:
        return self._for(incident_id)[0]

    def response_tools(self, incident_id: str) -> ResponseTools:
        return self._for(incident_id)[1]
