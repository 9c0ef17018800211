"""A MISP feed (manifest.json and one JSON per event, MISP's feed format) served on loopback and
read by `garrison intel pull` into the store; and what the shared indicators then change in a
reputation answer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from pydantic import HttpUrl

from orchestrator.intel.config import Feed, IntelConfig, MispFeed
from orchestrator.intel.feeds import pull_all
from orchestrator.intel.indicators import from_stix
from orchestrator.store.repository import Store
from tools.emulators.serve import serve
from tools.intel.base import SharedIndicator
from tools.intel.memory import InMemoryThreatIntel
from tools.intel.shared import InMemorySharedIndicators, SharedThreatIntel
from tools.models import Environment, Indicator, IndicatorKind
from tools.results import ReputationVerdict

EVENT = "5f0c2a6e-1d3b-4c7a-9e8f-2b4d6c8e0a11"
HASH = "9f2b5c3d" * 8


def misp_event(to_ids_domain: bool) -> dict[str, Any]:
    return {
        "Event": {
            "uuid": EVENT,
            "info": "Phishing wave with loader",
            "Attribute": [
                {"type": "ip-dst|port", "value": "203.0.113.80|443", "to_ids": True, "uuid": "a1"},
                {
                    "type": "domain",
                    "value": "Login-Portal.example.net",
                    "to_ids": to_ids_domain,
                    "uuid": "a2",
                },
                {"type": "url", "value": "http://login-portal.example.net/x", "to_ids": True},
                {"type": "ip-dst", "value": "not-an-ip", "to_ids": True},
            ],
            "Object": [
                {
                    "Attribute": [
                        {
                            "type": "filename|sha256",
                            "value": f"loader.exe|{HASH}",
                            "to_ids": True,
                            "uuid": "a3",
                        }
                    ]
                }
            ],
        }
    }


def feed_app(events: dict[str, dict[str, Any]], stamps: dict[str, str]) -> FastAPI:
    app = FastAPI()

    @app.get("/feed/manifest.json")
    async def manifest() -> JSONResponse:
        return JSONResponse({uid: {"timestamp": stamps[uid], "info": "x"} for uid in events})

    @app.get("/feed/{uid}.json")
    async def event(uid: str) -> JSONResponse:
        return JSONResponse(events[uid]) if uid in events else JSONResponse({}, 404)

    return app


async def test_a_misp_feed_is_read_into_the_store_and_then_only_what_changed(
    tmp_path: Path,
) -> None:
    store = await Store.open(f"sqlite:///{tmp_path / 'g.db'}")
    events = {EVENT: misp_event(to_ids_domain=False)}
    stamps = {EVENT: "1700000000"}
    async with serve(feed_app(events, stamps)) as url:
        config = IntelConfig(feeds=[Feed(name="circl", misp=MispFeed(url=HttpUrl(f"{url}/feed/")))])
        [first] = await pull_all(config, store, {})
        assert (first.error, first.read, first.indicators) == (None, 1, 3)
        [unchanged] = await pull_all(config, store, {})
        assert (unchanged.read, unchanged.indicators) == (0, 0)
        events[EVENT] = misp_event(to_ids_domain=True)
        stamps[EVENT] = "1700000500"
        [changed] = await pull_all(config, store, {})
        assert changed.read == 1
    ip = await store.intel.shared(Indicator(kind=IndicatorKind.IP, value="203.0.113.80"))
    domain = await store.intel.shared(
        Indicator(kind=IndicatorKind.DOMAIN, value="login-portal.example.net")
    )
    file = await store.intel.shared(Indicator(kind=IndicatorKind.SHA256, value=HASH))
    await store.close()
    assert [(s.source, s.verdict) for s in ip] == [("circl", ReputationVerdict.MALICIOUS)]
    assert [s.verdict for s in domain] == [ReputationVerdict.MALICIOUS]  # the later word
    assert [s.label for s in file] == ["Phishing wave with loader"]


async def test_an_unreachable_feed_is_reported_not_raised(tmp_path: Path) -> None:
    store = await Store.open(f"sqlite:///{tmp_path / 'g.db'}")
    config = IntelConfig(
        feeds=[Feed(name="gone", misp=MispFeed(url=HttpUrl("http://127.0.0.1:9/feed/")))]
    )
    [result] = await pull_all(config, store, {})
    await store.close()
    assert result.error is not None and result.error.startswith("misp:gone: ")


def shared(verdict: ReputationVerdict, value: str = "203.0.113.80") -> SharedIndicator:
    return SharedIndicator(kind=IndicatorKind.IP, value=value, source="p", verdict=verdict)


@pytest.mark.parametrize(
    ("value", "partner", "expected"),
    [
        ("203.0.113.80", ReputationVerdict.MALICIOUS, ReputationVerdict.MALICIOUS),
        ("203.0.113.80", ReputationVerdict.SUSPICIOUS, ReputationVerdict.SUSPICIOUS),
        ("10.1.2.3", ReputationVerdict.MALICIOUS, ReputationVerdict.INTERNAL),  # ours stays ours
    ],
)
async def test_shared_indicators_raise_the_vendors_verdict_never_over_internal(
    value: str, partner: ReputationVerdict, expected: ReputationVerdict
) -> None:
    inner = InMemoryThreatIntel(Environment(internal_networks=["10.0.0.0/8"]))
    intel = SharedThreatIntel(inner, InMemorySharedIndicators([shared(partner, value)]))
    answer = await intel.reputation(Indicator(kind=IndicatorKind.IP, value=value))
    assert answer.verdict is expected
    plain = await inner.reputation(Indicator(kind=IndicatorKind.IP, value=value))
    assert plain.verdict in (ReputationVerdict.UNKNOWN, ReputationVerdict.INTERNAL)


def test_stix_indicators_keep_only_checked_values_and_honest_verdicts() -> None:
    def indicator(pattern: str, **more: Any) -> dict[str, Any]:
        return {
            "type": "indicator",
            "id": "indicator--1",
            "pattern": pattern,
            "pattern_type": "stix",
            **more,
        }

    found = from_stix(
        [
            indicator("[ipv4-addr:value = '203.0.113.9']", indicator_types=["malicious-activity"]),
            indicator(
                "[domain-name:value = 'bad.example']",
                indicator_types=["malicious-activity"],
                confidence=30,
            ),
            indicator(f"[file:hashes.'SHA-256' = '{HASH.upper()}']"),
            indicator("[ipv4-addr:value = 'nope']", indicator_types=["malicious-activity"]),
            indicator("[ipv4-addr:value = '203.0.113.10']", revoked=True),
            indicator("[ipv4-addr:value = '203.0.113.11']", valid_until="2000-01-01T00:00:00Z"),
            indicator("[ipv4-addr:value MATCHES '203.*']", indicator_types=["malicious-activity"]),
            indicator("[broken", indicator_types=["malicious-activity"]),
        ],
        "p",
    )
    assert [(s.kind, s.value, s.verdict) for s in found] == [
        (IndicatorKind.IP, "203.0.113.9", ReputationVerdict.MALICIOUS),
        (IndicatorKind.DOMAIN, "bad.example", ReputationVerdict.SUSPICIOUS),  # low confidence
        (IndicatorKind.SHA256, HASH, ReputationVerdict.SUSPICIOUS),  # no malicious type
    ]
