"""Bundles of capabilities handed out by composition roots.

`ReadTools` is all an agent or a playbook may hold; `ResponseTools` only reaches orchestrator
activities, after the workflow's policy gate.
"""

from __future__ import annotations

from dataclasses import dataclass

from tools.edr.base import EdrReader, EdrResponder
from tools.firewall.base import FirewallResponder
from tools.identity.base import IdentityReader, IdentityResponder
from tools.intel.base import ThreatIntelReader
from tools.inventory.base import InventoryReader
from tools.ticketing.base import TicketingClient


@dataclass(frozen=True)
class ReadTools:
    edr: EdrReader
    identity: IdentityReader
    intel: ThreatIntelReader
    inventory: InventoryReader


@dataclass(frozen=True)
class ResponseTools:
    edr: EdrResponder
    firewall: FirewallResponder
    identity: IdentityResponder
    ticketing: TicketingClient
    inventory: InventoryReader
