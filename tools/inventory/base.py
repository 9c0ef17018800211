"""The asset and identity inventory (a CMDB in production, the recorded environment in a
simulation): the facts the policy scores risk from."""

from __future__ import annotations

from typing import Protocol

from tools.models import Asset, Environment, Identity


class InventoryReader(Protocol):
    async def environment(self) -> Environment: ...

    async def get_asset(self, asset_id: str) -> Asset | None: ...

    async def get_identity(self, identity_id: str) -> Identity | None: ...
