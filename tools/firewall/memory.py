"""The in-memory firewall twin: a block list of addresses, networks and domains kept in a
`StateJournal`.

An address is blocked when a blocked entry covers it (a network holding it); a domain when it or a
parent domain is blocked. Unblocking removes an entry of its own: an address blocked only through
a wider entry cannot be unblocked alone, as on a real firewall.
"""

from __future__ import annotations

import ipaddress

from tools.errors import PermanentToolError
from tools.firewall.targets import (
    canonical_domain,
    canonical_ip,
    covers,
    domain_covered,
    parse_ip_network,
)
from tools.journal import StateJournal, TwinFaults, TwinRuntime
from tools.results import Change

_IP = ("block_ip", "unblock_ip")
_DOMAIN = ("block_domain", "unblock_domain")

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class InMemoryFirewall:
    """Implements `FirewallResponder`."""

    def __init__(
        self, journal: StateJournal | None = None, faults: TwinFaults | None = None
    ) -> None:
        self._runtime = TwinRuntime(journal, faults)

    async def is_ip_blocked(self, ip: str) -> bool:
        self._runtime.call("is_ip_blocked")
        wanted = parse_ip_network(ip)
        return any(covers(entry, wanted) for entry in self._entries(_IP))

    async def block_ip(self, ip: str, comment: str = "") -> Change:
        target = canonical_ip(ip)
        self._runtime.call("block_ip")
        wanted = parse_ip_network(target)
        if any(covers(entry, wanted) for entry in self._entries(_IP)):
            return Change(applied=False, detail="already blocked")
        await self._runtime.record("block_ip", target, comment)
        return Change(applied=True, detail="blocked")

    async def unblock_ip(self, ip: str) -> Change:
        target = canonical_ip(ip)
        self._runtime.call("unblock_ip")
        entries = self._entries(_IP)
        if target not in entries:
            wanted = parse_ip_network(target)
            wider = [e for e in entries if covers(e, wanted)]
            if wider:
                raise PermanentToolError(f"{ip} is blocked by the wider entry {wider[0]}")
            return Change(applied=False, detail="already unblocked")
        await self._runtime.record("unblock_ip", target)
        return Change(applied=True, detail="unblocked")

    async def is_domain_blocked(self, domain: str) -> bool:
        self._runtime.call("is_domain_blocked")
        return domain_covered(canonical_domain(domain), self._entries(_DOMAIN))

    async def block_domain(self, domain: str, comment: str = "") -> Change:
        target = canonical_domain(domain)
        self._runtime.call("block_domain")
        if domain_covered(target, self._entries(_DOMAIN)):
            return Change(applied=False, detail="already blocked")
        await self._runtime.record("block_domain", target, comment)
        return Change(applied=True, detail="blocked")

    async def unblock_domain(self, domain: str) -> Change:
        target = canonical_domain(domain)
        self._runtime.call("unblock_domain")
        entries = self._entries(_DOMAIN)
        if target not in entries:
            if domain_covered(target, entries):
                raise PermanentToolError(f"{domain} is blocked by a parent domain entry")
            return Change(applied=False, detail="already unblocked")
        await self._runtime.record("unblock_domain", target)
        return Change(applied=True, detail="unblocked")

    async def list_blocked(self) -> list[str]:
        self._runtime.call("list_blocked")
        return sorted(self._entries(_IP)) + sorted(self._entries(_DOMAIN))

    def _entries(self, ops: tuple[str, str]) -> list[str]:
        """Targets whose latest change is the block (journal order, one fold)."""
        state: dict[str, bool] = {}
        for change in self._runtime.changes(*ops):
            state[change.target] = change.op == ops[0]
        return [target for target, blocked in state.items() if blocked]
