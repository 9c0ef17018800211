"""Threat intelligence (reader only): reputation of an IP, a domain or a file hash."""

from __future__ import annotations

from typing import Protocol

from tools.models import Indicator
from tools.results import Reputation


class ThreatIntelReader(Protocol):
    async def reputation(self, indicator: Indicator) -> Reputation: ...
