"""Production backends: the configured vendor adapters, the same for every incident, and the
organisation's inventory file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from orchestrator.observability.logs import protected
from orchestrator.settings import GarrisonSettings
from tools.intel.memory import InMemoryThreatIntel
from tools.inventory.memory import InMemoryInventory
from tools.models import Environment
from tools.toolsets import ReadTools, ResponseTools
from tools.vendor_settings import is_configured, load_vendor_settings
from tools.vendor_spec import Capability, VendorSpec
from tools.yaml_safe import safe_load

REQUIRED = (Capability.EDR, Capability.FIREWALL, Capability.IDENTITY, Capability.TICKETING)


class BackendConfigError(Exception):
    """The vendors or the inventory are not configured well enough to respond; names what."""


def load_inventory(path: Path) -> Environment:
    try:
        text = path.read_text(encoding="utf-8")
        raw = json.loads(text) if path.suffix == ".json" else safe_load(text)
        return Environment.model_validate(raw)
    except (OSError, ValueError, yaml.YAMLError) as error:
        if isinstance(error, ValidationError):
            first = error.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise BackendConfigError(f"{path}: {where}: {first['msg']}") from None
        raise BackendConfigError(f"{path}: {error}") from None


def choose_vendors(
    settings: GarrisonSettings, vendors: tuple[VendorSpec, ...]
) -> dict[Capability, VendorSpec]:
    """One configured vendor per capability; `GARRISON_VENDORS` decides between several."""
    wanted: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in (settings.vendors or "").split(","))):
        capability, _, name = part.partition("=")
        wanted[capability.strip()] = name.strip()
    chosen: dict[Capability, VendorSpec] = {}
    for capability in Capability:
        configured = [
            spec
            for spec in vendors
            if spec.capability is capability and is_configured(spec.settings)
        ]
        if capability.value in wanted:
            configured = [spec for spec in configured if spec.name == wanted[capability.value]]
        if len(configured) == 1:
            chosen[capability] = configured[0]
        elif len(configured) > 1:
            names = ", ".join(spec.name for spec in configured)
            raise BackendConfigError(
                f"several {capability.value} vendors are configured ({names}): "
                f"choose one with GARRISON_VENDORS={capability.value}=<vendor>"
            )
        elif capability in REQUIRED:
            raise BackendConfigError(
                f"no {capability.value} vendor is configured: see `garrison tools list`"
            )
    return chosen


class VendorBackends:
    def __init__(self, chosen: dict[Capability, VendorSpec], environment: Environment) -> None:
        self.adapters: dict[Capability, Any] = {
            capability: spec.adapter(protected(load_vendor_settings(spec.settings)), environment)
            for capability, spec in chosen.items()
        }
        inventory = InMemoryInventory(environment)
        intel = self.adapters.get(Capability.INTEL) or InMemoryThreatIntel(environment)
        self._read = ReadTools(
            edr=self.adapters[Capability.EDR],
            identity=self.adapters[Capability.IDENTITY],
            intel=intel,
            inventory=inventory,
        )
        self._response = ResponseTools(
            edr=self.adapters[Capability.EDR],
            firewall=self.adapters[Capability.FIREWALL],
            identity=self.adapters[Capability.IDENTITY],
            ticketing=self.adapters[Capability.TICKETING],
            inventory=inventory,
        )

    def read_tools(self, incident_id: str) -> ReadTools:
        return self._read

    def response_tools(self, incident_id: str) -> ResponseTools:
        return self._response

    async def aclose(self) -> None:
        for adapter in self.adapters.values():
            await adapter.aclose()
