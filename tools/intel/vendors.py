"""The threat-intelligence vendors Garrison ships (an explicit registry, no scanning)."""

from __future__ import annotations

from typing import Any

import httpx
from pydantic import SecretStr

from tools.intel.emulators.virustotal import EMULATOR_API_KEY
from tools.intel.emulators.virustotal import build_emulator as build_virustotal_emulator
from tools.intel.virustotal import VirusTotalIntel, VirusTotalSettings
from tools.models import Environment
from tools.vendor_spec import Capability, VendorSpec


def _build_virustotal(settings: Any, transport: httpx.AsyncBaseTransport | None) -> VirusTotalIntel:
    # Without the inventory only the non-routable guard applies (`garrison tools call`).
    return VirusTotalIntel(settings, transport)


def _build_virustotal_with_inventory(
    settings: Any, transport: httpx.AsyncBaseTransport | None, environment: Environment
) -> VirusTotalIntel:
    # With it, the organisation's own addresses and hosts are answered locally, never sent.
    return VirusTotalIntel(settings, transport, environment=environment)


def _virustotal_emulator_settings(base_url: str) -> VirusTotalSettings:
    return VirusTotalSettings(
        base_url=f"{base_url}/api/v3",
        api_key=SecretStr(EMULATOR_API_KEY),
        rate_per_minute=60_000,  # the emulator has no quota unless built with one
        timeout_s=10.0,
    )


VENDORS: tuple[VendorSpec, ...] = (
    VendorSpec(
        name="virustotal",
        title="VirusTotal API v3",
        capability=Capability.INTEL,
        settings=VirusTotalSettings,
        build=_build_virustotal,
        emulator=build_virustotal_emulator,
        emulator_settings=_virustotal_emulator_settings,
        build_with_inventory=_build_virustotal_with_inventory,
    ),
)
