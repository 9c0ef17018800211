"""Fakes for the tests of `response.execute` and the ledger: a firewall whose answers are lost or
never come, and backends that hand out only that firewall."""

from __future__ import annotations

import asyncio
from typing import Any

from tools.actions import BlockIp, business_key
from tools.errors import TransientToolError
from tools.firewall.memory import InMemoryFirewall
from tools.results import Change
from tools.toolsets import ResponseTools

INCIDENT = "live-ledger"
ACTION = BlockIp(target="203.0.113.7")
KEY = business_key(INCIDENT, ACTION)


class FlakyFirewall(InMemoryFirewall):
    """Applies every block; the first `drops` answers are lost (the connection drops after the
    change, or the activity times out at 20 s latency); `refuse` fails every block without
    applying it; `hang` never answers."""

    def __init__(self, *, drops: int = 0, refuse: Exception | None = None) -> None:
        super().__init__()
        self.drops = drops
        self.refuse = refuse
        self.hang = asyncio.Event()
        self.hanging = False
        self.sent = 0
        self.reached = asyncio.Event()  # a block was sent

    async def block_ip(self, ip: str, comment: str = "") -> Change:
        self.sent += 1
        self.reached.set()
        if self.refuse is not None:
            raise self.refuse
        change = await super().block_ip(ip, comment)
        if self.hanging:
            await self.hang.wait()
        if self.drops:
            self.drops -= 1
            raise TransientToolError("connection reset after the request was sent")
        return change


class FirewallOnly:
    """Backends whose response tools are this firewall; any other capability is a test error."""

    def __init__(self, firewall: FlakyFirewall) -> None:
        self.firewall = firewall

    def response_tools(self, incident_id: str) -> ResponseTools:
        unused: Any = None
        return ResponseTools(
            edr=unused,
            firewall=self.firewall,
            identity=unused,
            ticketing=unused,
            inventory=unused,
        )

    def read_tools(self, incident_id: str) -> Any:
        raise AssertionError("execute reads no telemetry")
