"""The firewall vendors Garrison ships: how each is configured, built and emulated."""

from __future__ import annotations

from pydantic import SecretStr

from tools.firewall.emulators import fortigate as fortigate_emulator
from tools.firewall.emulators import panos as panos_emulator
from tools.firewall.fortigate import FortiGateFirewall, FortiGateSettings
from tools.firewall.panos import PanOsFirewall, PanOsSettings
from tools.vendor_spec import Capability, VendorSpec

EMULATED_RATE = 60_000  # per minute: an emulator has no budget to protect


def _panos_emulator_settings(base_url: str) -> PanOsSettings:
    return PanOsSettings(
        base_url=base_url,
        username=panos_emulator.USERNAME,
        password=SecretStr(panos_emulator.PASSWORD),
        commit_poll_s=0.01,
        commit_timeout_s=5.0,
        rate_per_minute=EMULATED_RATE,
    )


def _fortigate_emulator_settings(base_url: str) -> FortiGateSettings:
    return FortiGateSettings(
        base_url=base_url,
        api_token=SecretStr(fortigate_emulator.API_TOKEN),
        rate_per_minute=EMULATED_RATE,
    )


VENDORS: tuple[VendorSpec, ...] = (
    VendorSpec(
        name="panos",
        title="Palo Alto Networks PAN-OS",
        capability=Capability.FIREWALL,
        settings=PanOsSettings,
        build=PanOsFirewall,
        emulator=panos_emulator.build_emulator,
        emulator_settings=_panos_emulator_settings,
    ),
    VendorSpec(
        name="fortigate",
        title="Fortinet FortiGate (FortiOS)",
        capability=Capability.FIREWALL,
        settings=FortiGateSettings,
        build=FortiGateFirewall,
        emulator=fortigate_emulator.build_emulator,
        emulator_settings=_fortigate_emulator_settings,
    ),
)
