"""Threat intelligence (reader only): reputation of an IP, a domain or a file hash; and the
indicators other organisations shared (TAXII collections, MISP feeds) as a source a reader
consults beside its vendor (`tools/intel/shared.py`)."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from pydantic import Field

from tools.models import Frozen, Indicator, IndicatorKind, ShortText
from tools.results import Reputation, ReputationVerdict


class ThreatIntelReader(Protocol):
    async def reputation(self, indicator: Indicator) -> Reputation: ...


class SharedIndicator(Frozen):
    """One indicator as a sharing partner published it."""

    kind: IndicatorKind
    value: ShortText
    source: ShortText  # the configured feed it came from (`taxii:partner-a`, `misp:circl`)
    verdict: ReputationVerdict  # MALICIOUS or SUSPICIOUS: a feed shares no harmless things
    confidence: int = Field(default=50, ge=0, le=100)
    label: ShortText = ""  # the indicator's name or the MISP event's info
    ref: ShortText = ""  # the STIX id or the MISP attribute uuid
    valid_until: datetime | None = None


class SharedIndicatorSource(Protocol):
    async def shared(self, indicator: Indicator) -> list[SharedIndicator]:
        """What partners shared about this value (still valid), any order."""
        ...
