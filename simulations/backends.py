"""One vendor world for a recorded incident: the in-memory twins seeded from its environment and
telemetry, sharing one state journal and one set of faults."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from tools.edr.memory import InMemoryEdr
from tools.firewall.memory import InMemoryFirewall
from tools.identity.memory import InMemoryIdentity
from tools.intel.memory import InMemoryThreatIntel
from tools.inventory.memory import InMemoryInventory
from tools.journal import MemoryJournal, StateJournal, TwinFaults
from tools.models import Environment
from tools.telemetry import Telemetry
from tools.ticketing.memory import InMemoryTicketing
from tools.toolsets import ReadTools, ResponseTools


def memory_backends(
    environment: Environment,
    events: Iterable[Mapping[str, Any]],
    journal: StateJournal | None = None,
    faults: TwinFaults | None = None,
) -> tuple[ReadTools, ResponseTools]:
    """Readers and responders over the same twins: what an action changes, a read then shows."""
    journal = journal if journal is not None else MemoryJournal()
    faults = faults if faults is not None else TwinFaults()
    inventory = InMemoryInventory(environment, faults)
    edr = InMemoryEdr(
        environment, journal=journal, faults=faults, telemetry=Telemetry.from_events(events)
    )
    identity = InMemoryIdentity(environment, journal, faults)
    read = ReadTools(
        edr=edr,
        identity=identity,
        intel=InMemoryThreatIntel(environment, faults),
        inventory=inventory,
    )
    respond = ResponseTools(
        edr=edr,
        firewall=InMemoryFirewall(journal, faults),
        identity=identity,
        ticketing=InMemoryTicketing(journal, faults),
        inventory=inventory,
    )
    return read, respond
