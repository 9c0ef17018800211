"""The runtime's wrapper: the read tools it hands the agents answer reputations with the store's
shared indicators beside the twin, and the response tools are the inner backends' own; and the
triage's bound on the time its intelligence lookups may take."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from agents.models import ExtractedEntities
from agents.triage.reputation import look_up
from orchestrator.intel.backends import SharedIntelBackends
from orchestrator.store.repository import Store
from simulations.backends import memory_backends
from tools.intel.base import SharedIndicator
from tools.models import Environment, Indicator, IndicatorKind
from tools.results import Reputation, ReputationVerdict
from tools.toolsets import ReadTools, ResponseTools


class OneWorld:
    def __init__(self) -> None:
        self.read, self.respond = memory_backends(Environment(), [])

    def read_tools(self, incident_id: str) -> ReadTools:
        return self.read

    def response_tools(self, incident_id: str) -> ResponseTools:
        return self.respond


async def test_wrapped_read_tools_consult_the_stores_shared_indicators(tmp_path: Path) -> None:
    store = await Store.open(f"sqlite:///{tmp_path / 'g.db'}")
    await store.intel.keep_indicators(
        [
            SharedIndicator(
                kind=IndicatorKind.DOMAIN,
                value="c2.example",
                source="partner-a",
                verdict=ReputationVerdict.MALICIOUS,
                confidence=85,
            )
        ]
    )
    inner = OneWorld()
    wrapped = SharedIntelBackends(inner, store.intel)
    domain = Indicator(kind=IndicatorKind.DOMAIN, value="c2.example")
    answer = await wrapped.read_tools("i-1").intel.reputation(domain)
    plain = await inner.read_tools("i-1").intel.reputation(domain)
    await store.close()
    assert (answer.verdict, answer.sources) == (ReputationVerdict.MALICIOUS, ["shared:partner-a"])
    assert plain.verdict is ReputationVerdict.UNKNOWN
    assert wrapped.response_tools("i-1") is inner.respond
    assert wrapped.read_tools("i-1").edr is inner.read.edr


class SlowIntel:
    """A vendor whose quota is spent: every answer waits far longer than triage may."""

    async def reputation(self, indicator: Indicator) -> Reputation:
        await asyncio.sleep(60)
        return Reputation(indicator=indicator.value, verdict=ReputationVerdict.MALICIOUS)


async def test_triage_lookups_stop_at_their_deadline_and_say_so() -> None:
    entities = ExtractedEntities(ips=["203.0.113.1", "203.0.113.2"], domains=["x.example"])
    started = time.monotonic()
    findings, notes = await look_up(SlowIntel(), entities, deadline_s=0.2)
    assert time.monotonic() - started < 5
    assert findings == []
    assert notes == ["threat intelligence: 3 lookup(s) skipped after 0.2 s"]
