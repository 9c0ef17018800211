"""Every vendor integration Garrison ships, by capability: an explicit registry (no scanning)."""

from __future__ import annotations

from tools.edr.vendors import VENDORS as EDR_VENDORS
from tools.firewall.vendors import VENDORS as FIREWALL_VENDORS
from tools.identity.vendors import VENDORS as IDENTITY_VENDORS
from tools.intel.vendors import VENDORS as INTEL_VENDORS
from tools.ticketing.vendors import VENDORS as TICKETING_VENDORS
from tools.vendor_spec import Capability, VendorSpec

VENDORS: tuple[VendorSpec, ...] = (
    *EDR_VENDORS,
    *FIREWALL_VENDORS,
    *IDENTITY_VENDORS,
    *TICKETING_VENDORS,
    *INTEL_VENDORS,
)

# What `garrison simulate --backends emulated` uses unless told otherwise.
DEFAULT_EMULATED: dict[Capability, str] = {
    Capability.EDR: "crowdstrike",
    Capability.FIREWALL: "panos",
    Capability.IDENTITY: "okta",
    Capability.TICKETING: "jira",
    Capability.INTEL: "virustotal",
}


class UnknownVendor(KeyError):
    pass


def vendor(name: str) -> VendorSpec:
    for spec in VENDORS:
        if spec.name == name.lower():
            return spec
    known = ", ".join(spec.name for spec in VENDORS)
    raise UnknownVendor(f"unknown vendor {name!r}; known: {known}")


def of_capability(capability: Capability) -> tuple[VendorSpec, ...]:
    return tuple(spec for spec in VENDORS if spec.capability is capability)
