"""VirusTotal API v3 as a `ThreatIntelReader`: the reputation of an IP, a domain or a SHA-256 from
the engines' `last_analysis_stats` and the community `reputation`.

Nothing about the organisation's own network is ever sent to VirusTotal: addresses in the internal
networks or held by an asset answer INTERNAL locally, non-routable addresses, asset hostnames and
internal-only names answer UNKNOWN locally, and malformed values are never put in a URL. A 404
NotFoundError means VirusTotal has no record: UNKNOWN, not an error.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Generator
from typing import assert_never

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError
from pydantic_settings import SettingsConfigDict

from tools.addresses import NON_ROUTABLE
from tools.errors import PermanentToolError, TransientToolError
from tools.http import Priority, RateBudget, raise_for_status, send, tls_context
from tools.intel.base import ThreatIntelReader
from tools.models import Environment, Indicator, IndicatorKind
from tools.results import Reputation, ReputationVerdict
from tools.vendor_settings import VendorSettings

VENDOR = "virustotal"
SOURCE = "virustotal"

# Two engines agreeing is the usual bar for "malicious": one engine alone is often a false positive.
MALICIOUS_MIN_ENGINES = 2
# A 429 QuotaExceededError without Retry-After is retried after the quota's minute window.
QUOTA_WINDOW_S = 60.0

_INTERNAL_SUFFIXES = (".local", ".localhost", ".internal", ".home.arpa", ".lan", ".corp")
_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9])?\.)+[a-z0-9-]{2,63}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class VirusTotalSettings(VendorSettings):
    model_config = SettingsConfigDict(
        env_prefix="GARRISON_VIRUSTOTAL_", extra="ignore", frozen=True
    )

    base_url: str = Field(default="https://www.virustotal.com/api/v3", min_length=1)
    api_key: SecretStr
    rate_per_minute: float = Field(default=4.0, gt=0)  # the public API's budget


# --- wire shapes ----------------------------------------------------------------------------------


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class LastAnalysisStats(_Wire):
    """How many engines put the object in each category at its last analysis."""

    malicious: int = Field(default=0, ge=0)
    suspicious: int = Field(default=0, ge=0)
    harmless: int = Field(default=0, ge=0)
    undetected: int = Field(default=0, ge=0)
    timeout: int = Field(default=0, ge=0)


class _Attributes(_Wire):
    last_analysis_stats: LastAnalysisStats = Field(default_factory=LastAnalysisStats)
    reputation: int = 0
    # VirusTotal tags an exploit sample with the CVE it exploits: `cve-2017-11882`
    tags: list[str] = Field(default_factory=list)


class _Object(_Wire):
    id: str
    type: str
    attributes: _Attributes = Field(default_factory=_Attributes)


class _ObjectResponse(_Wire):
    data: _Object


class _ErrorBody(_Wire):
    code: str
    message: str = ""


class _ErrorResponse(_Wire):
    error: _ErrorBody


# --- mappers --------------------------------------------------------------------------------------


def _verdict(stats: LastAnalysisStats, reputation: int) -> ReputationVerdict:
    """The rule (docs/vendors/virustotal.md): two malicious engines make it MALICIOUS; one, or any
    suspicious engine, or a negative community reputation make it SUSPICIOUS; otherwise an engine
    calling it harmless makes it HARMLESS; no engine with an opinion leaves it UNKNOWN. Community
    votes can raise concern but never clear a detection (attackers vote too)."""
    if stats.malicious >= MALICIOUS_MIN_ENGINES:
        return ReputationVerdict.MALICIOUS
    if stats.malicious or stats.suspicious or reputation < 0:
        return ReputationVerdict.SUSPICIOUS
    if stats.harmless:
        return ReputationVerdict.HARMLESS
    return ReputationVerdict.UNKNOWN


def _score(stats: LastAnalysisStats) -> int:
    """The detection ratio in percent over the engines that answered (a suspicious counts half)."""
    answered = stats.malicious + stats.suspicious + stats.harmless + stats.undetected
    if not answered:
        return 0
    return min(100, round(100 * (stats.malicious + stats.suspicious / 2) / answered))


def _to_reputation(indicator: str, payload: bytes) -> Reputation:
    try:
        obj = _ObjectResponse.model_validate_json(payload).data
    except ValidationError as error:
        raise PermanentToolError(
            f"{VENDOR}: unexpected object for {indicator!r}: {error}"
        ) from None
    stats, reputation = obj.attributes.last_analysis_stats, obj.attributes.reputation
    return Reputation(
        indicator=indicator,
        verdict=_verdict(stats, reputation),
        score=_score(stats),
        sources=[SOURCE],
        vulnerabilities=_cves(obj.attributes.tags),
    )


def _cves(tags: list[str]) -> list[str]:
    """The CVE ids among an object's tags (`cve-2017-11882` -> `CVE-2017-11882`)."""
    found = (re.fullmatch(r"cve-(\d{4})-(\d{4,7})", t.strip().lower()) for t in tags)
    return sorted({f"CVE-{m.group(1)}-{m.group(2)}" for m in found if m})[:20]


def _error_code(payload: bytes) -> str | None:
    try:
        return _ErrorResponse.model_validate_json(payload).error.code
    except ValidationError:
        return None


def _address(value: str) -> Address | None:
    try:
        address = ipaddress.ip_address(value.strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _networks(values: list[str]) -> list[Network]:
    networks: list[Network] = []
    for value in values:
        try:
            networks.append(ipaddress.ip_network(value.strip(), strict=False))
        except ValueError:
            continue
    return networks


def _inside(address: Address, networks: list[Network] | tuple[Network, ...]) -> bool:
    return any(address.version == n.version and address in n for n in networks)


# --- adapter --------------------------------------------------------------------------------------


class _ApiKeyAuth(httpx.Auth):
    """VirusTotal's auth: the key in the `x-apikey` header of every request."""

    def __init__(self, api_key: SecretStr) -> None:
        self._api_key = api_key

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["x-apikey"] = self._api_key.get_secret_value()
        yield request


class VirusTotalIntel:
    """Implements `ThreatIntelReader`. `environment` is the organisation's inventory: its internal
    networks and asset addresses are answered locally and never leave the process."""

    def __init__(
        self,
        settings: VirusTotalSettings,
        transport: httpx.AsyncBaseTransport | None = None,
        *,
        environment: Environment | None = None,
    ) -> None:
        environment = environment if environment is not None else Environment()
        self._internal = _networks(list(environment.internal_networks))
        self._asset_networks = _networks([ip for a in environment.assets for ip in a.ips])
        self._asset_names = {
            name.strip().lower().rstrip(".")
            for asset in environment.assets
            for name in (asset.hostname, asset.id)
            if name
        }
        self._budget = RateBudget(settings.rate_per_minute)
        self._client = httpx.AsyncClient(
            verify=tls_context(),
            base_url=settings.base_url.rstrip("/") + "/",
            auth=_ApiKeyAuth(settings.api_key),
            timeout=httpx.Timeout(settings.timeout_s, connect=min(10.0, settings.timeout_s)),
            headers={"accept": "application/json"},
            transport=transport,
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def reputation(self, indicator: Indicator) -> Reputation:
        match indicator.kind:
            case IndicatorKind.IP:
                return await self._ip(indicator.value)
            case IndicatorKind.DOMAIN:
                return await self._domain(indicator.value)
            case IndicatorKind.SHA256:
                return await self._file(indicator.value)
            case _:
                assert_never(indicator.kind)

    async def _ip(self, value: str) -> Reputation:
        address = _address(value)
        if address is None:
            return _unknown(value)
        if _inside(address, self._internal) or _inside(address, self._asset_networks):
            return Reputation(
                indicator=value, verdict=ReputationVerdict.INTERNAL, sources=["environment"]
            )
        if _inside(address, NON_ROUTABLE):
            return _unknown(value)
        return await self._lookup(value, f"ip_addresses/{address.compressed}")

    async def _domain(self, value: str) -> Reputation:
        name = _idna(value)
        if (
            not _DOMAIN.match(name)
            or name in self._asset_names
            or name.endswith(_INTERNAL_SUFFIXES)
        ):
            return _unknown(value)
        return await self._lookup(value, f"domains/{name}")

    async def _file(self, value: str) -> Reputation:
        digest = value.strip().lower()
        if not _SHA256.match(digest):
            return _unknown(value)
        return await self._lookup(value, f"files/{digest}")

    async def _lookup(self, indicator: str, path: str) -> Reputation:
        response = await send(
            self._client,
            "GET",
            path,
            vendor=VENDOR,
            budget=self._budget,
            priority=Priority.ENRICHMENT,
            check=False,
        )
        # VirusTotal has no record of it: that is an answer. Any other 404 (a wrong base URL)
        # is not, and goes through the one error mapping.
        if response.status_code == 404 and _error_code(response.content) == "NotFoundError":
            return Reputation(
                indicator=indicator, verdict=ReputationVerdict.UNKNOWN, sources=[SOURCE]
            )
        try:
            raise_for_status(response, VENDOR)
        except TransientToolError as error:
            if response.status_code == 429 and error.retry_after_s is None:
                # VirusTotal's quota answers carry no Retry-After; its budget is per minute.
                raise TransientToolError(str(error), retry_after_s=QUOTA_WINDOW_S) from None
            raise
        return _to_reputation(indicator, response.content)


def _idna(value: str) -> str:
    """The ASCII (punycode) form VirusTotal keys domains by; "" when it has none."""
    try:
        return value.strip().rstrip(".").encode("idna").decode("ascii").lower()
    except UnicodeError:
        return ""


def _unknown(value: str) -> Reputation:
    return Reputation(indicator=value, verdict=ReputationVerdict.UNKNOWN)


def _conforms(reader: VirusTotalIntel) -> ThreatIntelReader:
    """Never called: pyright checks here that the adapter meets the Protocol."""
    return reader
