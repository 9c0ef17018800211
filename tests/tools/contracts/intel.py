"""The threat-intelligence contract over the shared world: what is known about the
environment's own addresses, and no invented verdicts about the rest."""

from __future__ import annotations

import pytest

from tests.tools.contracts.world import C2_IP, RUNDLL_SHA256, Factory, Scenario
from tools.errors import TransientToolError
from tools.intel.base import ThreatIntelReader
from tools.journal import TwinFaults
from tools.models import Indicator, IndicatorKind
from tools.results import ReputationVerdict

IntelFactory = Factory[ThreatIntelReader]


def _ip(value: str) -> Indicator:
    return Indicator(kind=IndicatorKind.IP, value=value)


async def internal_addresses_are_internal(make: IntelFactory) -> None:
    async with make(Scenario()) as h:
        for address in ("172.18.39.6", "10.0.5.13", "198.51.100.10"):  # last: an asset's address
            reputation = await h.tool.reputation(_ip(address))
            assert reputation.indicator == address
            assert reputation.verdict is ReputationVerdict.INTERNAL


async def nothing_else_is_judged(make: IntelFactory) -> None:
    async with make(Scenario()) as h:
        for indicator in (
            _ip(C2_IP),
            _ip("not-an-ip"),
            Indicator(kind=IndicatorKind.DOMAIN, value="evil.example"),
            Indicator(kind=IndicatorKind.SHA256, value=RUNDLL_SHA256),
        ):
            reputation = await h.tool.reputation(indicator)
            assert reputation.verdict is ReputationVerdict.UNKNOWN


async def transient_faults_fail_the_first_calls(make: IntelFactory) -> None:
    async with make(Scenario(faults=TwinFaults(fail_first={"reputation": 1}))) as h:
        with pytest.raises(TransientToolError):
            await h.tool.reputation(_ip(C2_IP))
        assert (await h.tool.reputation(_ip(C2_IP))).verdict is ReputationVerdict.UNKNOWN


CONTRACTS = (
    internal_addresses_are_internal,
    nothing_else_is_judged,
    transient_faults_fail_the_first_calls,
)
