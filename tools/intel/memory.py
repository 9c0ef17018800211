"""The in-memory threat-intelligence twin. It says only what is honestly known from the recorded
environment: an address in the internal networks or held by an asset is INTERNAL; everything else
is UNKNOWN. It never guesses malice, so a simulation scores the orchestrator, not the twin."""

from __future__ import annotations

import ipaddress
from functools import lru_cache

from tools.journal import TwinFaults
from tools.models import Environment, Indicator, IndicatorKind, in_networks
from tools.results import Reputation, ReputationVerdict


class InMemoryThreatIntel:
    """Implements `ThreatIntelReader`."""

    def __init__(self, environment: Environment, faults: TwinFaults | None = None) -> None:
        self._environment = environment
        self._faults = faults if faults is not None else TwinFaults()
        self._asset_ips = {_address(ip) for asset in environment.assets for ip in asset.ips} - {
            None
        }

    async def reputation(self, indicator: Indicator) -> Reputation:
        self._faults.before_call("reputation")
        if indicator.kind is IndicatorKind.IP and self._internal(indicator.value):
            return Reputation(
                indicator=indicator.value,
                verdict=ReputationVerdict.INTERNAL,
                sources=["environment"],
            )
        return Reputation(indicator=indicator.value, verdict=ReputationVerdict.UNKNOWN)

    def _internal(self, value: str) -> bool:
        address = _address(value)
        if address is None:
            return False
        return address in self._asset_ips or in_networks(
            str(address), list(self._environment.internal_networks)
        )


@lru_cache(maxsize=8_192)  # an estate's addresses repeat in every incident's twin; immutable values
def _address(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(value.strip())
    except ValueError:
        return None
