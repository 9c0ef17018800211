"""The threat-intelligence contract run against every intel vendor adapter over real loopback HTTP
to its emulator, plus what only the vendor path can show: seeded verdicts, the vendor's errors, and
that nothing about the organisation's own network ever goes over the wire."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from pydantic import SecretStr

from tests.tools.contracts import intel
from tests.tools.contracts.world import C2_IP, RUNDLL_SHA256, Harness, Scenario, environment, events
from tools.emulators.base import EmulatorFaults, EmulatorState
from tools.emulators.serve import serve
from tools.errors import AuthError, NotFoundError, TransientToolError
from tools.intel.emulators.virustotal import build_emulator
from tools.intel.vendors import VENDORS
from tools.intel.virustotal import LastAnalysisStats, VirusTotalIntel, VirusTotalSettings
from tools.models import Indicator, IndicatorKind
from tools.results import ReputationVerdict
from tools.vendor_spec import VendorSpec

Contract = Callable[[Any], Awaitable[None]]


def _factory(spec: VendorSpec) -> Any:
    @asynccontextmanager
    async def make(scenario: Scenario) -> AsyncIterator[Harness[Any]]:
        fail = sum(scenario.faults.fail_first.values()) if scenario.faults else 0
        state = EmulatorState(faults=EmulatorFaults(fail_5xx=fail))
        app = spec.emulator(scenario.environment, scenario.events, state)
        async with serve(app) as base_url:
            adapter = VirusTotalIntel(
                spec.emulator_settings(base_url), environment=scenario.environment
            )
            try:
                yield Harness(tool=adapter, state_changes=lambda: state.state_changes)
            finally:
                await adapter.aclose()

    return make


@pytest.mark.parametrize(
    ("contract", "spec"),
    [
        pytest.param(contract, spec, id=f"{spec.name}.{contract.__name__}")
        for spec in VENDORS
        for contract in intel.CONTRACTS
    ],
)
async def test_vendor_meets_contract(contract: Contract, spec: VendorSpec) -> None:
    await contract(_factory(spec))


# --- VirusTotal over its emulator -----------------------------------------------------------------


def _ip(value: str) -> Indicator:
    return Indicator(kind=IndicatorKind.IP, value=value)


def _settings(served_at: str, **overrides: Any) -> VirusTotalSettings:
    return VENDORS[0].emulator_settings(served_at).model_copy(update=overrides)


@asynccontextmanager
async def _virustotal(
    state: EmulatorState | None = None, **emulator: Any
) -> AsyncIterator[tuple[VirusTotalIntel, EmulatorState]]:
    state = state if state is not None else EmulatorState()
    app = build_emulator(environment(), events(), state, **emulator)
    async with serve(app) as base_url:
        adapter = VirusTotalIntel(_settings(base_url), environment=environment())
        try:
            yield adapter, state
        finally:
            await adapter.aclose()


async def test_seeded_verdicts_are_judged_by_the_documented_rule() -> None:
    verdicts = {
        C2_IP: LastAnalysisStats(malicious=7, suspicious=1, harmless=60, undetected=22),
        "evil.example": LastAnalysisStats(malicious=1, harmless=70, undetected=19),
        RUNDLL_SHA256: LastAnalysisStats(harmless=3, undetected=60),
    }
    async with _virustotal(verdicts=verdicts, reputations={"8.8.4.4": -20}) as (vt, _):
        c2 = await vt.reputation(_ip(C2_IP))
        assert (c2.verdict, c2.score, c2.sources) == (
            ReputationVerdict.MALICIOUS,
            8,
            ["virustotal"],
        )
        domain = await vt.reputation(Indicator(kind=IndicatorKind.DOMAIN, value="Evil.Example."))
        assert domain.verdict is ReputationVerdict.SUSPICIOUS
        assert domain.indicator == "Evil.Example."
        file = await vt.reputation(Indicator(kind=IndicatorKind.SHA256, value=RUNDLL_SHA256))
        assert file.verdict is ReputationVerdict.HARMLESS
        voted = await vt.reputation(_ip("8.8.4.4"))
        assert voted.verdict is ReputationVerdict.SUSPICIOUS


async def test_recorded_hashes_exist_with_no_detections_and_unseen_ones_are_not_found() -> None:
    async with _virustotal() as (vt, state):
        seen = await vt.reputation(Indicator(kind=IndicatorKind.SHA256, value=RUNDLL_SHA256))
        unseen = await vt.reputation(Indicator(kind=IndicatorKind.SHA256, value="ab" * 32))
    assert seen.verdict is unseen.verdict is ReputationVerdict.UNKNOWN
    assert [e.status for e in state.ledger] == [200, 404]


async def test_internal_and_asset_addresses_never_go_over_http() -> None:
    local = [
        "172.18.39.6",  # an asset, inside the internal networks
        "10.0.5.13",  # inside the internal networks
        "198.51.100.10",  # an asset's address outside the internal networks
        "::ffff:172.18.39.6",  # the same asset, IPv4-mapped
        " 10.0.5.13 ",
        "192.168.1.20",  # non-routable, outside the environment: no public reputation
        "127.0.0.1",
        "fe80::1",
        "not-an-ip",
    ]
    names = ["PRD01.pandalab.com", "prd01", "mordordc.pandalab.com.", "printer.corp", "x/../y.com"]
    async with _virustotal() as (vt, state):
        for value in local:
            await vt.reputation(_ip(value))
        for name in names:
            await vt.reputation(Indicator(kind=IndicatorKind.DOMAIN, value=name))
        await vt.reputation(Indicator(kind=IndicatorKind.SHA256, value="../../ip_addresses/1"))
        assert state.ledger == []
        # ...while an external address does go out, so the check above can fail.
        await vt.reputation(_ip(C2_IP))
    assert [e.path for e in state.ledger] == [f"/api/v3/ip_addresses/{C2_IP}"]


async def test_quota_exceeded_is_transient_and_waits_the_quota_window() -> None:
    async with _virustotal(quota_per_minute=1) as (vt, state):
        await vt.reputation(_ip(C2_IP))
        with pytest.raises(TransientToolError) as raised:
            await vt.reputation(_ip(C2_IP))
    assert raised.value.retry_after_s == 60.0
    assert "QuotaExceededError" in str(raised.value)
    assert [e.status for e in state.ledger] == [200, 429]


async def test_429_with_retry_after_is_honoured() -> None:
    state = EmulatorState(faults=EmulatorFaults(rate_limit_429=1, retry_after_s=7))
    async with _virustotal(state) as (vt, _):
        with pytest.raises(TransientToolError) as raised:
            await vt.reputation(_ip(C2_IP))
        assert raised.value.retry_after_s == 7.0
        assert (await vt.reputation(_ip(C2_IP))).verdict is ReputationVerdict.UNKNOWN


async def test_5xx_is_transient_then_the_retry_answers() -> None:
    state = EmulatorState(faults=EmulatorFaults(fail_5xx=2))
    async with _virustotal(state) as (vt, _):
        for _attempt in range(2):
            with pytest.raises(TransientToolError):
                await vt.reputation(_ip(C2_IP))
        assert (await vt.reputation(_ip(C2_IP))).verdict is ReputationVerdict.UNKNOWN


async def test_latency_past_the_timeout_is_transient() -> None:
    state = EmulatorState(faults=EmulatorFaults(latency_ms=500))
    app = build_emulator(environment(), events(), state)
    async with serve(app) as base_url:
        vt = VirusTotalIntel(_settings(base_url, timeout_s=0.1))
        try:
            with pytest.raises(TransientToolError, match="timed out"):
                await vt.reputation(_ip(C2_IP))
        finally:
            await vt.aclose()


@pytest.mark.parametrize("key", ["wrong-key", ""])
async def test_a_refused_api_key_is_an_auth_error(key: str) -> None:
    state = EmulatorState()
    app = build_emulator(environment(), events(), state)
    async with serve(app) as base_url:
        vt = VirusTotalIntel(_settings(base_url, api_key=SecretStr(key)))
        try:
            with pytest.raises(AuthError) as raised:
                await vt.reputation(_ip(C2_IP))
        finally:
            await vt.aclose()
    code = "WrongCredentialsError" if key else "AuthenticationRequiredError"
    assert code in str(raised.value)
    assert "wrong-key" not in str(raised.value)  # the key never appears in an error


async def test_a_wrong_base_url_is_not_mistaken_for_an_unknown_indicator() -> None:
    app = build_emulator(environment(), events(), EmulatorState())
    async with serve(app) as base_url:
        vt = VirusTotalIntel(_settings(base_url, base_url=f"{base_url}/api/v2"))
        try:
            with pytest.raises(NotFoundError):
                await vt.reputation(Indicator(kind=IndicatorKind.DOMAIN, value="evil.example"))
        finally:
            await vt.aclose()


async def test_the_spec_builds_an_adapter_that_keeps_private_addresses_local() -> None:
    spec = VENDORS[0]
    state = EmulatorState()
    async with serve(spec.emulator(environment(), events(), state)) as base_url:
        vt = spec.build(spec.emulator_settings(base_url), None)
        try:
            assert (await vt.reputation(_ip("10.0.5.13"))).verdict is ReputationVerdict.UNKNOWN
            assert (await vt.reputation(_ip(C2_IP))).verdict is ReputationVerdict.UNKNOWN
        finally:
            await vt.aclose()
    assert [e.path for e in state.ledger] == [f"/api/v3/ip_addresses/{C2_IP}"]
