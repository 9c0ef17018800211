"""Several vendor emulators served at once, each on its own port with its control plane, seeded
from one world made of several recorded incidents (`garrison emulate A B C --incident X --incident
Y`): what an operator points a real `garrison worker` at to rehearse outages.

The world is the union of the recordings: their inventories (the first definition of an asset or
identity wins), their telemetry in order, and their alerts (served by the EDR vendors' alert APIs,
for pull mode).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from tools.emulators.base import EmulatorFaults, EmulatorState
from tools.emulators.control import FAULTS_PATH, LEDGER_PATH, ControlPlane
from tools.emulators.serve import serve
from tools.models import Alert, Environment
from tools.vendor_settings import env_assignments
from tools.vendor_spec import VendorSpec


@dataclass(frozen=True)
class EmulatorSeed:
    environment: Environment = field(default_factory=Environment)
    events: Sequence[Mapping[str, Any]] = ()
    alerts: Sequence[Alert] = ()


def merge_seeds(seeds: Iterable[EmulatorSeed]) -> EmulatorSeed:
    """One world from several recordings."""
    seeds = list(seeds)
    return EmulatorSeed(
        environment=merge_environments([s.environment for s in seeds]),
        events=[event for seed in seeds for event in seed.events],
        alerts=_unique_alerts(alert for seed in seeds for alert in seed.alerts),
    )


def merge_environments(environments: Sequence[Environment]) -> Environment:
    assets = {a.id.lower(): a for e in reversed(environments) for a in e.assets}
    identities = {i.id.lower(): i for e in reversed(environments) for i in e.identities}
    return Environment(
        assets=sorted(assets.values(), key=lambda a: a.id.lower()),
        identities=sorted(identities.values(), key=lambda i: i.id.lower()),
        internal_networks=list(dict.fromkeys(n for e in environments for n in e.internal_networks)),
        protected=list(dict.fromkeys(p for e in environments for p in e.protected)),
    )


def _unique_alerts(alerts: Iterable[Alert]) -> list[Alert]:
    """Two recordings may reuse an alert uid: the vendor keeps one alert per id."""
    return list({alert.uid: alert for alert in alerts}.values())


@dataclass(frozen=True)
class ServedEmulator:
    spec: VendorSpec
    state: EmulatorState
    base_url: str

    @property
    def port(self) -> int:
        return int(self.base_url.rsplit(":", 1)[1])

    def settings_env(self) -> dict[str, str]:
        """The variables that point this vendor's adapter at the emulator."""
        return env_assignments(self.spec.emulator_settings(self.base_url))

    def describe(self) -> dict[str, Any]:
        return {
            "vendor": self.spec.name,
            "title": self.spec.title,
            "capability": self.spec.capability.value,
            "base_url": self.base_url,
            "port": self.port,
            "ledger_url": f"{self.base_url}{LEDGER_PATH}",
            "faults_url": f"{self.base_url}{FAULTS_PATH}",
            "env": self.settings_env(),
        }


def vendors_env(served: Sequence[ServedEmulator]) -> dict[str, str]:
    """Every vendor's variables, and `GARRISON_VENDORS` naming the first vendor served for each
    capability (so a worker configured with two EDRs knows which one to use)."""
    chosen: dict[str, str] = {}
    env: dict[str, str] = {}
    for emulator in served:
        chosen.setdefault(emulator.spec.capability.value, emulator.spec.name)
        env.update(emulator.settings_env())
    env["GARRISON_VENDORS"] = ",".join(f"{cap}={name}" for cap, name in chosen.items())
    return env


@asynccontextmanager
async def serve_fleet(
    specs: Sequence[VendorSpec],
    seed: EmulatorSeed,
    *,
    host: str = "127.0.0.1",
    first_port: int = 0,
    faults: Mapping[str, EmulatorFaults] | None = None,
) -> AsyncIterator[list[ServedEmulator]]:
    """Serve each vendor on `first_port`, `first_port + 1`, ... (0: ports the system picks)."""
    faults = faults or {}
    async with AsyncExitStack() as stack:
        served: list[ServedEmulator] = []
        for index, spec in enumerate(specs):
            state = EmulatorState(
                faults=faults.get(spec.name, EmulatorFaults()).model_copy(deep=True)
            )
            app = spec.build_emulator(seed.environment, seed.events, state, seed.alerts)
            port = first_port + index if first_port else 0
            base_url = await stack.enter_async_context(
                serve(ControlPlane(app, state, spec.name), host=host, port=port)
            )
            served.append(ServedEmulator(spec, state, base_url))
        yield served
