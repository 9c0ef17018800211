"""Backends that run the real vendor adapters over loopback HTTP against emulators of those
vendors, seeded from each incident's recording (`garrison simulate --backends emulated`).

The inventory stays the recorded environment: it is the organisation's own CMDB, not a vendor.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

from simulations.loader import LoadedIncident
from simulations.routing import recorded_id
from tools.emulators.base import EmulatorState
from tools.emulators.serve import serve
from tools.intel.memory import InMemoryThreatIntel
from tools.inventory.memory import InMemoryInventory
from tools.toolsets import ReadTools, ResponseTools
from tools.vendor_spec import Capability, VendorSpec


class EmulatedBackends:
    def __init__(self, incidents: list[LoadedIncident], choice: dict[Capability, VendorSpec]):
        self._incidents = {loaded.spec.id: loaded for loaded in incidents}
        self._choice = choice
        self._tools: dict[str, tuple[ReadTools, ResponseTools]] = {}
        self.states: dict[str, dict[Capability, EmulatorState]] = {}

    @asynccontextmanager
    async def serving(self, incident_id: str) -> AsyncIterator[None]:
        """Serve this incident's emulators and adapters for as long as it runs."""
        loaded = self._incidents[recorded_id(incident_id)]
        environment = loaded.spec.environment
        events = list(loaded.telemetry())
        async with AsyncExitStack() as stack:
            adapters: dict[Capability, Any] = {}
            states: dict[Capability, EmulatorState] = {}
            for capability, spec in self._choice.items():
                state = EmulatorState()
                base_url = await stack.enter_async_context(
                    serve(spec.emulator(environment, events, state))
                )
                adapter = spec.adapter(spec.emulator_settings(base_url), environment)
                stack.push_async_callback(adapter.aclose)
                adapters[capability], states[capability] = adapter, state
            inventory = InMemoryInventory(environment)
            intel = adapters.get(Capability.INTEL) or InMemoryThreatIntel(environment)
            self._tools[incident_id] = (
                ReadTools(
                    edr=adapters[Capability.EDR],
                    identity=adapters[Capability.IDENTITY],
                    intel=intel,
                    inventory=inventory,
                ),
                ResponseTools(
                    edr=adapters[Capability.EDR],
                    firewall=adapters[Capability.FIREWALL],
                    identity=adapters[Capability.IDENTITY],
                    ticketing=adapters[Capability.TICKETING],
                    inventory=inventory,
                ),
            )
            self.states[incident_id] = states
            try:
                yield
            finally:
                del self._tools[incident_id]

    def read_tools(self, incident_id: str) -> ReadTools:
        return self._tools[incident_id][0]

    def response_tools(self, incident_id: str) -> ResponseTools:
        return self._tools[incident_id][1]
