"""The identity vendors Garrison ships: Okta and Microsoft Entra ID (through Microsoft Graph)."""

from __future__ import annotations

from pydantic import SecretStr

from tools.identity.emulators import entra as entra_emulator
from tools.identity.emulators.okta import EMULATOR_TOKEN as OKTA_TOKEN
from tools.identity.emulators.okta import build_emulator as okta_emulator
from tools.identity.entra import EntraIdentity, EntraSettings
from tools.identity.okta import OktaIdentity, OktaSettings
from tools.vendor_spec import Capability, VendorSpec


def _okta_emulator_settings(base_url: str) -> OktaSettings:
    return OktaSettings(base_url=base_url, api_token=SecretStr(OKTA_TOKEN))


def _entra_emulator_settings(base_url: str) -> EntraSettings:
    return EntraSettings(
        base_url=base_url,
        token_url=f"{base_url}/{entra_emulator.TENANT_ID}/oauth2/v2.0/token",
        tenant_id=entra_emulator.TENANT_ID,
        client_id=entra_emulator.CLIENT_ID,
        client_secret=SecretStr(entra_emulator.CLIENT_SECRET),
    )


VENDORS: tuple[VendorSpec, ...] = (
    VendorSpec(
        name="okta",
        title="Okta",
        capability=Capability.IDENTITY,
        settings=OktaSettings,
        build=OktaIdentity,
        emulator=okta_emulator,
        emulator_settings=_okta_emulator_settings,
    ),
    VendorSpec(
        name="entra",
        title="Microsoft Entra ID (Microsoft Graph)",
        capability=Capability.IDENTITY,
        settings=EntraSettings,
        build=EntraIdentity,
        emulator=entra_emulator.build_emulator,
        emulator_settings=_entra_emulator_settings,
    ),
)
