"""One recorded incident whose EDR is the real CrowdStrike adapter over loopback HTTP against the
project's CrowdStrike emulator (seeded from the recording, with its fault knobs), and whose other
vendors are the recording's in-memory twins: what degraded-evidence tests fault."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from simulations.loader import LoadedIncident, load_all
from simulations.routing import RecordedBackends
from tools.edr.vendors import VENDORS
from tools.emulators.base import EmulatorState
from tools.emulators.serve import serve
from tools.toolsets import ReadTools, ResponseTools

CORPUS = Path(__file__).resolve().parents[2] / "simulations" / "incidents"
# A meterpreter payload run as pandalab\pedro.gustavo (privileged) dumps lsass on PRD01 and calls
# back to 10.0.5.13; the host's owner, pandalab\pupy.godoy, downloaded it with Edge.
LSASS_INCIDENT = "otrf-lsass-comsvcs-prd01"
HOST_OWNER = "pandalab\\pupy.godoy"


def recorded(name: str = LSASS_INCIDENT) -> LoadedIncident:
    loaded = load_all([CORPUS / name])
    assert loaded.problems == []
    return loaded.incidents[0]


@dataclass
class EmulatedEdrBackends:
    """`Backends` for one incident: the emulated EDR for reads, the twins for everything else
    (containment lands on the twins, whose journal a test reads)."""

    twins: RecordedBackends
    edr: object
    state: EmulatorState

    def read_tools(self, incident_id: str) -> ReadTools:
        return dataclasses.replace(self.twins.read_tools(incident_id), edr=self.edr)  # type: ignore[arg-type]

    def response_tools(self, incident_id: str) -> ResponseTools:
        return self.twins.response_tools(incident_id)

    def fault(self, **knobs: object) -> None:
        """Turn the emulator's knobs (`fail_5xx=6`, `down=True`); counters are consumed."""
        self.state.faults.update(knobs)

    @property
    def failed_reads(self) -> int:
        """Requests the emulator answered with a fault's 503."""
        return sum(1 for entry in self.state.ledger if entry.status == 503)


@asynccontextmanager
async def emulated_edr(loaded: LoadedIncident) -> AsyncIterator[EmulatedEdrBackends]:
    spec = next(v for v in VENDORS if v.name == "crowdstrike")
    environment = loaded.spec.environment
    state = EmulatorState()
    app = spec.build_emulator(environment, loaded.telemetry(), state, loaded.spec.alerts)
    async with serve(app) as base_url:
        adapter = spec.adapter(spec.emulator_settings(base_url), environment)
        try:
            yield EmulatedEdrBackends(RecordedBackends([loaded]), adapter, state)
        finally:
            await adapter.aclose()
