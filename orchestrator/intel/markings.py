"""The five TLP 2.0 marking definitions, as the OASIS CTI TC published them in
cti-stix-common-objects (extension-definition-specifications/tlp-2.0): fixed ids and `created`,
a `name`, and the TLP 2.0 property extension. STIX 2.1 itself predefines only TLP 1.0 (WHITE,
GREEN, AMBER, RED), whose ids mean something else, so these are built here, by their standard ids,
with the `stix2` library's `MarkingDefinition`. Consumers recognise a marking by its id."""

from __future__ import annotations

from stix2 import MarkingDefinition

from orchestrator.intel.policy import Tlp

TLP2_EXTENSION = "extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d"
TLP2_CREATED = "2022-10-01T00:00:00.000Z"
TLP2_IDS: dict[Tlp, str] = {
    Tlp.CLEAR: "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487",
    Tlp.GREEN: "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb",
    Tlp.AMBER: "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421",
    Tlp.AMBER_STRICT: "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003",
    Tlp.RED: "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1",
}


def tlp_marking(tlp: Tlp) -> MarkingDefinition:
    return MarkingDefinition(
        id=TLP2_IDS[tlp],
        created=TLP2_CREATED,
        name=f"TLP:{tlp.value.upper()}",
        extensions={TLP2_EXTENSION: {"extension_type": "property-extension", "tlp_2_0": tlp.value}},
    )


def tlp_of(marking_refs: list[str]) -> Tlp | None:
    """The strictest TLP 2.0 marking among these refs (None: not marked with TLP 2.0)."""
    found = [tlp for tlp, ref in TLP2_IDS.items() if ref in marking_refs]
    return max(found, key=lambda t: t.rank) if found else None
