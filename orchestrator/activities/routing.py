"""The orchestrator's half of triage: the agent returns a category, the routing file names the
playbook (`playbooks/registry.playbook_for`). Asset kinds are read from the inventory only when a
route asks for them; an inventory that cannot answer leaves them unknown (a route on asset kinds
then does not hold) rather than failing the triage."""

from __future__ import annotations

import logging

from agents.models import TriageResult
from playbooks.registry import current_routing, playbook_for
from tools.inventory.base import InventoryReader
from tools.models import AssetKind

log = logging.getLogger(__name__)


async def route_triage(result: TriageResult, inventory: InventoryReader) -> TriageResult:
    """`result` with the playbook the routing file names for it."""
    routing = current_routing()
    kinds: set[AssetKind] = set()
    if any(route.asset_kinds for route in routing.routes):
        for host in result.entities.hosts:
            try:
                asset = await inventory.get_asset(host)
            except Exception as error:  # a vendor error: route on what is known
                log.warning("routing: asset %s unread (%s)", host, type(error).__name__)
                continue
            if asset is not None:
                kinds.add(asset.kind)
    playbook = playbook_for(
        result.category,
        techniques=result.techniques,
        severity=result.severity,
        asset_kinds=kinds,
        routing=routing,
    )
    return result.model_copy(update={"playbook_id": playbook.id})
