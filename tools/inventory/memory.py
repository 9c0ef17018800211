"""The in-memory inventory twin: answers from a recorded `Environment`, matching names the way
the recorded-incident format compares them (case-insensitive; hosts by id, hostname or first
label; identities with or without their domain)."""

from __future__ import annotations

from tools.journal import TwinFaults
from tools.models import Asset, Environment, Identity
from tools.names import host_key, same_identity


class InMemoryInventory:
    """Implements `InventoryReader`."""

    def __init__(self, environment: Environment, faults: TwinFaults | None = None) -> None:
        self._environment = environment
        self._faults = faults if faults is not None else TwinFaults()

    async def environment(self) -> Environment:
        self._faults.before_call("environment")
        return self._environment

    async def get_asset(self, asset_id: str) -> Asset | None:
        self._faults.before_call("get_asset")
        return find_asset(self._environment, asset_id)

    async def get_identity(self, identity_id: str) -> Identity | None:
        self._faults.before_call("get_identity")
        return find_identity(self._environment, identity_id)


def find_asset(environment: Environment, name: str) -> Asset | None:
    """By id, then by hostname, then by first label of either."""
    lowered = name.strip().lower()
    for asset in environment.assets:
        if asset.id.lower() == lowered or (asset.hostname or "").lower() == lowered:
            return asset
    key = host_key(name)
    for asset in environment.assets:
        if host_key(asset.id) == key or (asset.hostname and host_key(asset.hostname) == key):
            return asset
    return None


def find_identity(environment: Environment, name: str) -> Identity | None:
    """Exact id first; else the one identity equal with or without its domain (None when a bare
    name is ambiguous: better not found than the wrong account)."""
    lowered = name.strip().lower()
    exact = [i for i in environment.identities if i.id.lower() == lowered]
    if exact:
        return exact[0]
    matches = [i for i in environment.identities if same_identity(i.id, name)]
    return matches[0] if len(matches) == 1 else None
