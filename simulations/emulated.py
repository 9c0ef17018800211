"""Backends that run the real vendor adapters over loopback HTTP against emulators of those
vendors, seeded from each incident's recording (`garrison simulate --backends emulated`).

Each incident gets its own emulators, with the run's `--fault`s applied from the start
(`simulations.faults`); `IncidentFaults` lifts the lasting ones on time. When the incident ends,
what it did to each vendor and its ticket are read (`simulations.vendor_effects`) for the report.
The inventory stays the recorded environment: it is the organisation's own CMDB, not a vendor.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from orchestrator.models import IncidentPhase, IncidentStatusView
from orchestrator.observability.logs import protect
from simulations.faults import Fault, Until
from simulations.loader import LoadedIncident
from simulations.routing import recorded_id
from simulations.scorer import Scorecard
from simulations.vendor_effects import TicketCheck, VendorEffects, effects_of, ticket_check
from tools.emulators.base import EmulatorFaults, EmulatorState
from tools.emulators.serve import serve
from tools.errors import ToolError
from tools.intel.memory import InMemoryThreatIntel
from tools.inventory.memory import InMemoryInventory
from tools.toolsets import ReadTools, ResponseTools
from tools.vendor_spec import Capability, VendorSpec

TICKET_READ_TIMEOUT_S = 30.0
_CLOSING = (IncidentPhase.CLOSING, IncidentPhase.CLOSED)


@dataclass
class IncidentFaults:
    """The run's faults on one incident's emulators: on from the start, lifted on time."""

    faults: Sequence[Fault]
    states: dict[Capability, EmulatorState]
    lifted: set[int] = field(default_factory=set)  # indexes into `faults`
    _timers: list[asyncio.Task[None]] = field(default_factory=list)

    def start(self) -> None:
        for index, fault in enumerate(self.faults):
            state = self.states.get(fault.capability)
            if state is None:
                continue
            state.faults.update(fault.knobs())
            if fault.lift_after_s is not None:
                self._timers.append(asyncio.create_task(self._lift_later(index)))

    def observe(self, status: IncidentStatusView) -> None:
        """Called with the workflow's status as the replay polls it."""
        if status.phase in _CLOSING:
            for index, fault in enumerate(self.faults):
                if fault.until is Until.CLOSING:
                    self.lift(index)

    def lift(self, index: int) -> None:
        fault = self.faults[index]
        state = self.states.get(fault.capability)
        if index not in self.lifted and state is not None:
            self.lifted.add(index)
            state.faults.update(fault.lifting())

    def clear(self) -> None:
        """Every knob back to its default: the run is over, its effects are read."""
        for timer in self._timers:
            timer.cancel()
        for state in self.states.values():
            state.faults.update(EmulatorFaults().model_dump())

    async def _lift_later(self, index: int) -> None:
        delay = self.faults[index].lift_after_s
        await asyncio.sleep(delay or 0.0)
        self.lift(index)


@dataclass(frozen=True)
class IncidentEffects:
    vendors: dict[str, VendorEffects]
    ticket: TicketCheck | None


class EmulatedBackends:
    def __init__(
        self,
        incidents: list[LoadedIncident],
        choice: dict[Capability, VendorSpec],
        faults: Sequence[Fault] = (),
    ):
        self._incidents = {loaded.spec.id: loaded for loaded in incidents}
        self._choice = choice
        self._faults = tuple(faults)
        self._tools: dict[str, tuple[ReadTools, ResponseTools]] = {}
        self.states: dict[str, dict[Capability, EmulatorState]] = {}
        self.effects: dict[str, IncidentEffects] = {}  # by recorded incident id

    @property
    def faults(self) -> tuple[Fault, ...]:
        return self._faults

    @asynccontextmanager
    async def serving(self, incident_id: str) -> AsyncIterator[IncidentFaults]:
        """Serve this incident's emulators and adapters for as long as it runs."""
        loaded = self._incidents[recorded_id(incident_id)]
        environment = loaded.spec.environment
        events = list(loaded.telemetry())
        async with AsyncExitStack() as stack:
            adapters: dict[Capability, Any] = {}
            states: dict[Capability, EmulatorState] = {}
            for capability, spec in self._choice.items():
                state = EmulatorState()
                app = spec.build_emulator(environment, events, state, loaded.spec.alerts)
                base_url = await stack.enter_async_context(serve(app))
                settings = spec.emulator_settings(base_url)
                protect(settings)  # the emulators' credentials stay out of the logs too
                adapter = spec.adapter(settings, environment)
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
            faults = IncidentFaults(self._faults, states)
            faults.start()
            try:
                yield faults
                faults.clear()
                self.effects[loaded.spec.id] = IncidentEffects(
                    vendors={
                        capability.value: effects_of(self._choice[capability].name, state)
                        for capability, state in states.items()
                    },
                    ticket=await _read_ticket(adapters.get(Capability.TICKETING), incident_id),
                )
            finally:
                faults.clear()
                del self._tools[incident_id]

    def annotate(self, card: Scorecard) -> Scorecard:
        """The scorecard with the run's faults and each incident's vendor effects."""
        rows = [
            row.model_copy(update={"vendors": found.vendors, "ticket": found.ticket})
            if (found := self.effects.get(row.id)) is not None
            else row
            for row in card.per_incident
        ]
        faults = [fault.text for fault in self._faults]
        return card.model_copy(update={"per_incident": rows, "faults": faults})

    def read_tools(self, incident_id: str) -> ReadTools:
        return self._tools[incident_id][0]

    def response_tools(self, incident_id: str) -> ResponseTools:
        return self._tools[incident_id][1]


async def _read_ticket(ticketing: Any, incident_id: str) -> TicketCheck | None:
    """The incident's ticket as the vendor shows it once every fault is lifted."""
    if ticketing is None:
        return None
    try:
        async with asyncio.timeout(TICKET_READ_TIMEOUT_S):
            return ticket_check(await ticketing.find_ticket(incident_id))
    except (ToolError, TimeoutError) as error:
        return TicketCheck(found=False, error=f"{type(error).__name__}: {error}"[:300])
