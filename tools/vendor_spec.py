"""How a vendor integration declares itself, so that composition roots (the worker, the
simulator, `garrison tools ...`, `garrison emulate`) can list, configure, build and emulate it
without knowing any vendor by name.

Each capability package exports `VENDORS: tuple[VendorSpec, ...]` from `tools/<cap>/vendors.py`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import httpx
from starlette.types import ASGIApp

from tools.emulators.base import EmulatorState
from tools.models import Alert, Environment
from tools.vendor_settings import VendorSettings


class Capability(StrEnum):
    EDR = "edr"
    FIREWALL = "firewall"
    IDENTITY = "identity"
    TICKETING = "ticketing"
    INTEL = "intel"


@dataclass(frozen=True)
class VendorSpec:
    name: str  # the CLI's and the environment's name: "crowdstrike" -> GARRISON_CROWDSTRIKE_*
    title: str
    capability: Capability
    settings: type[VendorSettings]
    # The adapter, from its settings; tests inject a transport, production passes None.
    build: Callable[[Any, httpx.AsyncBaseTransport | None], Any]
    # The emulator of the vendor's API, seeded from a recorded environment and its telemetry.
    emulator: Callable[[Environment, Iterable[Mapping[str, Any]], EmulatorState], ASGIApp]
    # Settings that point the adapter at an emulator served at `base_url`, with the credentials
    # that emulator accepts.
    emulator_settings: Callable[[str], Any]
    # For adapters that need the organisation's inventory (e.g. to keep internal addresses from
    # a third party): used instead of `build` when given.
    build_with_inventory: (
        Callable[[Any, httpx.AsyncBaseTransport | None, Environment], Any] | None
    ) = None
    # For vendors that serve alerts (pull mode): the emulator seeded with a recording's alerts too.
    alert_emulator: (
        Callable[
            [Environment, Iterable[Mapping[str, Any]], EmulatorState, Iterable[Alert]], ASGIApp
        ]
        | None
    ) = None

    def build_emulator(
        self,
        environment: Environment,
        events: Iterable[Mapping[str, Any]],
        state: EmulatorState,
        alerts: Iterable[Alert] = (),
    ) -> ASGIApp:
        """The emulator as composition roots build it: with the alerts when it serves them."""
        if self.alert_emulator is not None:
            return self.alert_emulator(environment, events, state, alerts)
        return self.emulator(environment, events, state)

    def adapter(
        self,
        settings: Any,
        environment: Environment,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> Any:
        """The adapter as composition roots build it: with the inventory when it wants one."""
        if self.build_with_inventory is not None:
            return self.build_with_inventory(settings, transport, environment)
        return self.build(settings, transport)
