"""A `ThreatIntelReader` that adds what sharing partners published (TAXII collections, MISP
feeds, kept in the store by `garrison intel pull`) to the answer of the configured vendor or
twin. The vendor answers first: an address it calls INTERNAL stays internal whatever a feed
says (a partner's private addresses are not ours). Otherwise the more severe verdict wins, and
every partner that named the value is listed in the sources as `shared:<feed>`.
"""

from __future__ import annotations

from datetime import UTC, datetime

from tools.intel.base import SharedIndicator, SharedIndicatorSource, ThreatIntelReader
from tools.models import Indicator
from tools.results import Reputation, ReputationVerdict

_RANK = {
    ReputationVerdict.INTERNAL: -1,
    ReputationVerdict.UNKNOWN: 0,
    ReputationVerdict.HARMLESS: 1,
    ReputationVerdict.SUSPICIOUS: 2,
    ReputationVerdict.MALICIOUS: 3,
}


class SharedThreatIntel:
    """Implements `ThreatIntelReader`."""

    def __init__(self, inner: ThreatIntelReader, source: SharedIndicatorSource) -> None:
        self._inner = inner
        self._source = source

    async def reputation(self, indicator: Indicator) -> Reputation:
        answer = await self._inner.reputation(indicator)
        if answer.verdict is ReputationVerdict.INTERNAL:
            return answer
        shared = await self._source.shared(indicator)
        if not shared:
            return answer
        best = max(shared, key=lambda s: (_RANK[s.verdict], s.confidence))
        sources = list(dict.fromkeys([*answer.sources, *(f"shared:{s.source}" for s in shared)]))
        if _RANK[best.verdict] <= _RANK[answer.verdict]:
            return answer.model_copy(update={"sources": sources})
        return Reputation(
            indicator=answer.indicator,
            verdict=best.verdict,
            score=max(answer.score, best.confidence),
            sources=sources,
        )


class InMemorySharedIndicators:
    """Implements `SharedIndicatorSource` over a list (tests, simulations)."""

    def __init__(self, indicators: list[SharedIndicator] | None = None) -> None:
        self.indicators = list(indicators or [])

    async def shared(self, indicator: Indicator) -> list[SharedIndicator]:
        now = datetime.now(UTC)
        value = indicator.value.strip().lower()
        return [
            s
            for s in self.indicators
            if s.kind is indicator.kind
            and s.value.lower() == value
            and (s.valid_until is None or s.valid_until > now)
        ]
