"""The EDR vendor integrations: settings, adapter and emulator of each."""

from __future__ import annotations

import httpx
from pydantic import SecretStr

from tools.edr.crowdstrike import CrowdStrikeEdr, CrowdStrikeSettings
from tools.edr.defender import DefenderEdr, DefenderSettings
from tools.edr.emulators import crowdstrike as crowdstrike_emulator
from tools.edr.emulators import defender as defender_emulator
from tools.edr.emulators.crowdstrike_world import FalconWorld
from tools.edr.emulators.defender import DefenderWorld
from tools.vendor_spec import Capability, VendorSpec


def _crowdstrike(settings: CrowdStrikeSettings, transport: httpx.AsyncBaseTransport | None):
    return CrowdStrikeEdr(settings, transport)


def crowdstrike_emulator_settings(base_url: str) -> CrowdStrikeSettings:
    world = FalconWorld()
    return CrowdStrikeSettings(
        base_url=base_url,
        client_id=world.client_id,
        client_secret=SecretStr(world.client_secret),
        poll_interval_s=0.01,
        rate_per_minute=60_000,
    )


def _defender(settings: DefenderSettings, transport: httpx.AsyncBaseTransport | None):
    return DefenderEdr(settings, transport)


def defender_emulator_settings(base_url: str) -> DefenderSettings:
    world = DefenderWorld()
    return DefenderSettings(
        base_url=base_url,
        token_url=f"{base_url}/{world.tenant_id}/oauth2/v2.0/token",
        tenant_id=world.tenant_id,
        client_id=world.client_id,
        client_secret=SecretStr(world.client_secret),
        poll_interval_s=0.01,
        rate_per_minute=60_000,
    )


VENDORS: tuple[VendorSpec, ...] = (
    VendorSpec(
        name="crowdstrike",
        title="CrowdStrike Falcon",
        capability=Capability.EDR,
        settings=CrowdStrikeSettings,
        build=_crowdstrike,
        emulator=crowdstrike_emulator.build_emulator,
        emulator_settings=crowdstrike_emulator_settings,
        alert_emulator=crowdstrike_emulator.build_emulator,
    ),
    VendorSpec(
        name="defender",
        title="Microsoft Defender for Endpoint",
        capability=Capability.EDR,
        settings=DefenderSettings,
        build=_defender,
        emulator=defender_emulator.build_emulator,
        emulator_settings=defender_emulator_settings,
        alert_emulator=defender_emulator.build_emulator,
    ),
)
