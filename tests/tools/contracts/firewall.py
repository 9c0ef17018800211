"""The firewall contract: every `FirewallResponder` implementation passes these."""

from __future__ import annotations

import pytest

from tests.tools.contracts.world import C2_IP, Factory, Scenario
from tools.errors import PermanentToolError, TransientToolError
from tools.firewall.base import FirewallResponder
from tools.journal import TwinFaults

FirewallFactory = Factory[FirewallResponder]


async def blocks_and_unblocks_ips_idempotently(make: FirewallFactory) -> None:
    async with make(Scenario()) as h:
        assert await h.tool.is_ip_blocked(C2_IP) is False
        assert (await h.tool.block_ip(C2_IP, comment="garrison")).applied is True
        assert await h.tool.is_ip_blocked(C2_IP) is True
        assert (await h.tool.block_ip(f"{C2_IP}/32")).applied is False
        assert h.state_changes() == 1
        assert await h.tool.list_blocked() == [C2_IP]

        assert (await h.tool.unblock_ip(C2_IP)).applied is True
        assert await h.tool.is_ip_blocked(C2_IP) is False
        assert (await h.tool.unblock_ip(C2_IP)).applied is False
        assert await h.tool.list_blocked() == []
        assert h.state_changes() == 2


async def a_blocked_network_covers_its_addresses(make: FirewallFactory) -> None:
    async with make(Scenario()) as h:
        assert (await h.tool.block_ip("203.0.113.0/24")).applied is True
        assert await h.tool.is_ip_blocked(C2_IP) is True
        assert (await h.tool.block_ip(C2_IP)).applied is False
        assert await h.tool.is_ip_blocked("198.51.100.1") is False
        assert await h.tool.is_ip_blocked("2001:db8::1") is False
        with pytest.raises(PermanentToolError):
            await h.tool.unblock_ip(C2_IP)
        assert h.state_changes() == 1


async def blocks_and_unblocks_domains_idempotently(make: FirewallFactory) -> None:
    async with make(Scenario()) as h:
        assert (await h.tool.block_domain("Evil.Example.", comment="garrison")).applied is True
        assert await h.tool.is_domain_blocked("evil.example") is True
        assert await h.tool.is_domain_blocked("cdn.evil.example") is True
        assert await h.tool.is_domain_blocked("example") is False
        assert (await h.tool.block_domain("evil.example")).applied is False
        assert h.state_changes() == 1
        assert await h.tool.list_blocked() == ["evil.example"]
        assert (await h.tool.unblock_domain("EVIL.example")).applied is True
        assert await h.tool.is_domain_blocked("evil.example") is False
        assert (await h.tool.unblock_domain("evil.example")).applied is False
        assert h.state_changes() == 2


async def malformed_targets_are_refused(make: FirewallFactory) -> None:
    async with make(Scenario()) as h:
        with pytest.raises(PermanentToolError):
            await h.tool.block_ip("not-an-ip")
        with pytest.raises(PermanentToolError):
            await h.tool.block_domain("http://evil.example/path")
        assert h.state_changes() == 0


async def transient_faults_fail_the_first_calls_then_apply(make: FirewallFactory) -> None:
    async with make(Scenario(faults=TwinFaults(fail_first={"block_ip": 2}))) as h:
        for _ in range(2):
            with pytest.raises(TransientToolError):
                await h.tool.block_ip(C2_IP)
        assert await h.tool.is_ip_blocked(C2_IP) is False
        assert (await h.tool.block_ip(C2_IP)).applied is True
        assert h.state_changes() == 1


CONTRACTS = (
    blocks_and_unblocks_ips_idempotently,
    a_blocked_network_covers_its_addresses,
    blocks_and_unblocks_domains_idempotently,
    malformed_targets_are_refused,
    transient_faults_fail_the_first_calls_then_apply,
)
