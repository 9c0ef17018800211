"""VirusTotal: private mappers, settings and auth, and the error mapping over a MockTransport."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from tests.tools.contracts.world import environment
from tools.errors import AuthError, NotFoundError, PermanentToolError, TransientToolError
from tools.intel.virustotal import (
    LastAnalysisStats,
    VirusTotalIntel,
    VirusTotalSettings,
    _score,
    _to_reputation,
    _verdict,
)
from tools.models import Indicator, IndicatorKind
from tools.results import ReputationVerdict
from tools.vendor_settings import VendorConfigError, load_vendor_settings

KEY = "k" * 64
SHA = "14FB2362D0F317107D91424B35D37C1FFD7B8C0C86158BA173B15D77D1200770"


def _stats(**counts: int) -> LastAnalysisStats:
    return LastAnalysisStats(**counts)


def _object(stats: dict[str, int], reputation: int = 0) -> dict[str, Any]:
    attributes = {"last_analysis_stats": stats, "reputation": reputation, "tags": []}
    return {"data": {"id": "x", "type": "ip_address", "attributes": attributes}}


def _vt_error(status: int, code: str, headers: dict[str, str] | None = None) -> httpx.Response:
    body = {"error": {"code": code, "message": f"{code} happened"}}
    return httpx.Response(status, json=body, headers=headers)


class _Recorder:
    """A MockTransport handler answering one fixed response and keeping every request."""

    def __init__(self, response: httpx.Response | Exception) -> None:
        self.response = response
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if isinstance(self.response, Exception):
            raise self.response
        return self.response


def _adapter(recorder: _Recorder) -> VirusTotalIntel:
    settings = VirusTotalSettings(
        base_url="https://vt.test/api/v3", api_key=SecretStr(KEY), rate_per_minute=60_000
    )
    return VirusTotalIntel(settings, httpx.MockTransport(recorder), environment=environment())


async def _ask(response: httpx.Response | Exception, kind: IndicatorKind, value: str) -> Any:
    recorder = _Recorder(response)
    adapter = _adapter(recorder)
    try:
        return await adapter.reputation(Indicator(kind=kind, value=value)), recorder.requests
    finally:
        await adapter.aclose()


# --- the verdict rule -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stats", "reputation", "verdict"),
    [
        (_stats(malicious=2, harmless=80), 0, ReputationVerdict.MALICIOUS),
        (_stats(malicious=2), 50, ReputationVerdict.MALICIOUS),  # votes never clear detections
        (_stats(malicious=1, harmless=80), 0, ReputationVerdict.SUSPICIOUS),
        (_stats(suspicious=1, harmless=80), 0, ReputationVerdict.SUSPICIOUS),
        (_stats(harmless=80), -1, ReputationVerdict.SUSPICIOUS),
        (_stats(harmless=1, undetected=80), 0, ReputationVerdict.HARMLESS),
        (_stats(undetected=80, timeout=3), 10, ReputationVerdict.UNKNOWN),
        (_stats(), 0, ReputationVerdict.UNKNOWN),
    ],
)
def test_verdict_follows_the_documented_rule(
    stats: LastAnalysisStats, reputation: int, verdict: ReputationVerdict
) -> None:
    assert _verdict(stats, reputation) is verdict


def test_score_is_the_detection_ratio_over_answering_engines() -> None:
    assert _score(_stats()) == 0
    assert _score(_stats(malicious=9, harmless=1, timeout=50)) == 90
    assert _score(_stats(malicious=1, suspicious=2, harmless=6, undetected=1)) == 20
    assert _score(_stats(malicious=5)) == 100


def test_to_reputation_reads_the_object_and_ignores_other_attributes() -> None:
    payload = json.dumps(_object({"malicious": 3, "harmless": 1, "extra": 9}, -5)).encode()
    reputation = _to_reputation("203.0.113.7", payload)
    assert reputation.indicator == "203.0.113.7"
    assert (reputation.verdict, reputation.score) == (ReputationVerdict.MALICIOUS, 75)
    assert reputation.sources == ["virustotal"]


def test_to_reputation_names_the_cves_of_the_objects_tags() -> None:
    body = _object({"malicious": 12})
    body["data"]["attributes"]["tags"] = ["rtf", "cve-2017-11882", "CVE-2018-0802", "exploit"]
    reputation = _to_reputation(SHA, json.dumps(body).encode())
    assert reputation.vulnerabilities == ["CVE-2017-11882", "CVE-2018-0802"]
    assert _to_reputation(SHA, json.dumps(_object({})).encode()).vulnerabilities == []


def test_to_reputation_refuses_a_body_that_is_not_an_object() -> None:
    with pytest.raises(PermanentToolError, match="virustotal"):
        _to_reputation("x", b'{"data": []}')


# --- settings and auth ----------------------------------------------------------------------------


def test_settings_name_the_missing_api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GARRISON_VIRUSTOTAL_API_KEY", raising=False)
    with pytest.raises(VendorConfigError, match="GARRISON_VIRUSTOTAL_API_KEY is required"):
        load_vendor_settings(VirusTotalSettings)


def test_settings_default_to_the_public_api_and_its_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GARRISON_VIRUSTOTAL_API_KEY", KEY)
    monkeypatch.delenv("GARRISON_VIRUSTOTAL_BASE_URL", raising=False)
    monkeypatch.delenv("GARRISON_VIRUSTOTAL_RATE_PER_MINUTE", raising=False)
    settings = load_vendor_settings(VirusTotalSettings)
    assert settings.base_url == "https://www.virustotal.com/api/v3"
    assert settings.rate_per_minute == 4
    assert KEY not in repr(settings)


@pytest.mark.parametrize(
    ("kind", "value", "path"),
    [
        (IndicatorKind.IP, "203.0.113.7", "/api/v3/ip_addresses/203.0.113.7"),
        (IndicatorKind.IP, "2001:DB8:0:0::7", "/api/v3/ip_addresses/2001:db8::7"),
        (IndicatorKind.DOMAIN, "Evil.Example.", "/api/v3/domains/evil.example"),
        (IndicatorKind.DOMAIN, "bücher.example", "/api/v3/domains/xn--bcher-kva.example"),
        (IndicatorKind.SHA256, SHA, f"/api/v3/files/{SHA.lower()}"),
    ],
)
async def test_each_kind_is_one_get_with_the_api_key(
    kind: IndicatorKind, value: str, path: str
) -> None:
    reputation, requests = await _ask(httpx.Response(200, json=_object({})), kind, value)
    assert reputation.indicator == value
    [request] = requests
    assert (request.method, request.url.path) == ("GET", path)
    assert request.headers["x-apikey"] == KEY


@pytest.mark.parametrize(
    ("kind", "value"),
    [
        (IndicatorKind.IP, "10.9.8.7"),
        (IndicatorKind.IP, "198.51.100.10"),
        (IndicatorKind.IP, "100.64.0.1"),
        (IndicatorKind.IP, "203.0.113.7/24"),
        (IndicatorKind.DOMAIN, "MORDORDC"),
        (IndicatorKind.DOMAIN, "evil.example/../../files/x"),
        (IndicatorKind.DOMAIN, "host.internal"),
        (IndicatorKind.SHA256, "d41d8cd98f00b204e9800998ecf8427e"),  # an MD5 is not a SHA-256
    ],
)
async def test_local_or_malformed_values_are_answered_without_a_request(
    kind: IndicatorKind, value: str
) -> None:
    reputation, requests = await _ask(httpx.Response(500), kind, value)
    assert requests == []
    assert reputation.verdict in (ReputationVerdict.INTERNAL, ReputationVerdict.UNKNOWN)


# --- errors ---------------------------------------------------------------------------------------


async def test_not_found_error_is_an_unknown_answer() -> None:
    reputation, _ = await _ask(_vt_error(404, "NotFoundError"), IndicatorKind.DOMAIN, "a.example")
    assert (reputation.verdict, reputation.sources) == (ReputationVerdict.UNKNOWN, ["virustotal"])


async def test_a_404_that_is_not_virustotal_s_is_an_error() -> None:
    with pytest.raises(NotFoundError):
        await _ask(httpx.Response(404, text="<html>"), IndicatorKind.DOMAIN, "a.example")


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (401, "WrongCredentialsError"),
        (401, "AuthenticationRequiredError"),
        (401, "UserNotActiveError"),
        (403, "ForbiddenError"),
    ],
)
async def test_refused_credentials_are_auth_errors(status: int, code: str) -> None:
    with pytest.raises(AuthError, match=code):
        await _ask(_vt_error(status, code), IndicatorKind.IP, "203.0.113.7")


async def test_an_invalid_argument_is_permanent() -> None:
    with pytest.raises(PermanentToolError) as raised:
        await _ask(_vt_error(400, "InvalidArgumentError"), IndicatorKind.IP, "203.0.113.7")
    assert not isinstance(raised.value, AuthError | NotFoundError)


@pytest.mark.parametrize(
    ("response", "retry_after"),
    [
        (_vt_error(429, "QuotaExceededError", {"Retry-After": "12"}), 12.0),
        (_vt_error(429, "QuotaExceededError"), 60.0),
        (_vt_error(429, "TooManyRequestsError"), 60.0),
        (_vt_error(503, "TransientError"), None),
        (_vt_error(504, "DeadlineExceededError"), None),
    ],
)
async def test_quota_and_server_errors_are_transient(
    response: httpx.Response, retry_after: float | None
) -> None:
    with pytest.raises(TransientToolError) as raised:
        await _ask(response, IndicatorKind.IP, "203.0.113.7")
    assert raised.value.retry_after_s == retry_after


async def test_a_dropped_connection_is_transient() -> None:
    with pytest.raises(TransientToolError):
        await _ask(httpx.ConnectError("reset"), IndicatorKind.IP, "203.0.113.7")
