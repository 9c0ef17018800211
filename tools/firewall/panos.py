"""Palo Alto Networks PAN-OS firewall over the XML API (`/api/`).

Garrison blocks by membership of a static address group (`GARRISON_PANOS_ADDRESS_GROUP`) that the
operator's deny rule references: each block is an address object (`ip-netmask` or `fqdn`) named
`garrison-<value>`, tagged `garrison`, its description carrying when it was blocked and when the
block expires, and added to the group; then the candidate configuration is committed and the
commit job polled until it finishes. Reads look at the running configuration (what the firewall
enforces); actions decide from the candidate, so a change applied but not committed (a lost
answer, a killed worker) is committed by the retry rather than applied twice.
"""

from __future__ import annotations

import asyncio
import re
import time
import xml.etree.ElementTree as ET
from collections.abc import Generator
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Literal

import httpx
from pydantic import Field, SecretStr, ValidationInfo, field_validator
from pydantic_settings import SettingsConfigDict

from tools.errors import AuthError, NotFoundError, PermanentToolError, TransientToolError
from tools.firewall.targets import (
    TAG,
    block_description,
    canonical_domain,
    canonical_ip,
    covers,
    domain_covered,
    object_name,
    parse_ip_network,
)
from tools.http import Priority, RateBudget, raise_for_status, send, tls_context
from tools.results import Change
from tools.vendor_settings import VendorSettings

VENDOR = "PAN-OS"
API = "/api/"
# Response codes worth retrying: internal errors and an expired session (PAN-OS API reference,
# "PAN-OS XML API Error Codes"); every other error code is a request PAN-OS will refuse again.
TRANSIENT_CODES = frozenset({"2", "3", "4", "5", "11", "21", "22"})
AUTH_CODES = frozenset({"403", "16"})
NOT_PRESENT = "7"


class PanOsSettings(VendorSettings):
    """`GARRISON_PANOS_*`: an API key, or a username and password to generate one."""

    model_config = SettingsConfigDict(env_prefix="GARRISON_PANOS_", extra="ignore", frozen=True)

    api_key: SecretStr | None = None
    username: str | None = None
    password: SecretStr | None = Field(default=None, validate_default=True)
    address_group: str = Field(default="garrison-blocked", min_length=1)
    vsys: str = Field(default="vsys1", min_length=1)
    device: str = "localhost.localdomain"
    block_ttl_h: float | None = Field(default=None, gt=0)
    commit_poll_s: float = Field(default=2.0, gt=0)
    commit_timeout_s: float = Field(default=300.0, gt=0)

    @field_validator("password")
    @classmethod
    def _credentials(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        if info.data.get("api_key") is not None:
            return value
        if value is None or not info.data.get("username"):
            raise ValueError(
                "set GARRISON_PANOS_API_KEY, or GARRISON_PANOS_USERNAME and "
                "GARRISON_PANOS_PASSWORD to generate a key"
            )
        return value


class Kind(StrEnum):
    IP = "ip-netmask"
    FQDN = "fqdn"


@dataclass(frozen=True)
class Blocked:
    """One Garrison address object in the group."""

    name: str
    kind: Kind
    value: str
    description: str = ""


# --- wire mapping (private, unit-tested) ---------------------------------------------------------


def _parse(text: str) -> ET.Element:
    """PAN-OS answers plain XML; a document type (entity tricks) is refused, not expanded."""
    if "<!DOCTYPE" in text or "<!ENTITY" in text:
        raise PermanentToolError(f"{VENDOR}: refused an XML answer with a document type")
    try:
        return ET.fromstring(text)  # noqa: S314  (no DTD: checked above)
    except ET.ParseError as error:
        raise TransientToolError(f"{VENDOR}: unreadable answer: {text[:200]!r}") from error


def _message(root: ET.Element) -> str:
    parts = [t.strip() for t in root.itertext() if t.strip()]
    return " ".join(parts)[:300]


def _check(response: httpx.Response, *, missing_ok: bool = False) -> ET.Element:
    """The one mapping of PAN-OS answers: HTTP status first, then `<response status= code=>`."""
    raise_for_status(response, VENDOR)
    root = _parse(response.text)
    if root.get("status") == "success":
        return root
    code = root.get("code", "")
    if code == NOT_PRESENT and missing_ok:
        return root
    message = f"{VENDOR}: {response.request.url.path} -> error {code}: {_message(root)}"
    if code in AUTH_CODES:
        raise AuthError(message)
    if code == NOT_PRESENT:
        raise NotFoundError(message)
    if code in TRANSIENT_CODES:
        raise TransientToolError(message)
    raise PermanentToolError(message)


def _expiry(description: str) -> datetime | None:
    """The expiry `block_description` recorded, or None for a block that never expires."""
    match = re.search(r"expires (\S+?)(?:;|$)", description)
    if match is None or match.group(1) == "never":
        return None
    return datetime.fromisoformat(match.group(1))


def _address_element(item: Blocked, group: str) -> str:
    """The object and its group membership, set in one request (atomic in the candidate)."""
    root = ET.Element("root")
    entry = ET.SubElement(ET.SubElement(root, "address"), "entry", name=item.name)
    ET.SubElement(entry, item.kind.value).text = item.value
    ET.SubElement(ET.SubElement(entry, "tag"), "member").text = TAG
    ET.SubElement(entry, "description").text = item.description
    grp = ET.SubElement(ET.SubElement(root, "address-group"), "entry", name=group)
    ET.SubElement(ET.SubElement(grp, "static"), "member").text = item.name
    return "".join(ET.tostring(child, encoding="unicode") for child in root)


def _to_blocked(entry: ET.Element) -> Blocked | None:
    """An address entry, if Garrison made it (tagged) and it is an address or an FQDN."""
    if TAG not in [m.text for m in entry.findall("./tag/member")]:
        return None
    name = entry.get("name", "")
    description = entry.findtext("description") or ""
    ip, fqdn = entry.findtext(Kind.IP.value), entry.findtext(Kind.FQDN.value)
    if ip:
        return Blocked(name, Kind.IP, canonical_ip(ip), description)
    if fqdn:
        return Blocked(name, Kind.FQDN, canonical_domain(fqdn), description)
    return None


def _members(answer: ET.Element) -> set[str] | None:
    group = answer.find("./result/entry")
    if group is None:
        return None
    return {m.text for m in group.findall("./static/member") if m.text}


def _job_id(answer: ET.Element) -> str | None:
    """The commit's job id; None when PAN-OS had no changes to commit."""
    return answer.findtext("./result/job")


def _job_done(answer: ET.Element) -> bool:
    """True once the job finished OK; a failed commit is permanent (its details say why)."""
    job = answer.find("./result/job")
    if job is None or job.findtext("status") != "FIN":
        return False
    if job.findtext("result") != "OK":
        details_node = job.find("details")
        details = _message(details_node) if details_node is not None else ""
        raise PermanentToolError(f"{VENDOR}: commit job {job.findtext('id')} failed: {details}")
    return True


def _key(response: httpx.Response) -> str:
    if response.status_code in (401, 403):
        raise AuthError(
            f"{VENDOR}: key generation refused GARRISON_PANOS_USERNAME/GARRISON_PANOS_PASSWORD"
        )
    key = _check(response).findtext("./result/key")
    if not key:
        raise PermanentToolError(f"{VENDOR}: key generation answered without a key")
    return key


def _auth_failed(response: httpx.Response) -> bool:
    return response.status_code == 403 or (
        response.status_code == 200 and b'code="403"' in response.content[:200]
    )


# --- auth -----------------------------------------------------------------------------------------


class PanOsKeyAuth(httpx.Auth):
    """Sends `X-PAN-KEY`. With a username and password the key is generated (`type=keygen`) on
    first use and regenerated once when PAN-OS refuses it (expired key lifetime, rotated)."""

    requires_response_body = True

    def __init__(
        self, url: str, api_key: str | None, username: str | None, password: str | None
    ) -> None:
        self._url = url
        self._key = api_key
        self._credentials = (username, password) if username and password else None
        self.generated = 0  # keys generated so far (tests show a refresh happens once)

    def _keygen(self) -> httpx.Request:
        assert self._credentials is not None
        user, password = self._credentials
        return httpx.Request(
            "POST", self._url, data={"type": "keygen", "user": user, "password": password}
        )

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if self._key is None and self._credentials is not None:
            self._key = _key((yield self._keygen()))
            self.generated += 1
        request.headers["X-PAN-KEY"] = self._key or ""
        response = yield request
        if _auth_failed(response) and self._credentials is not None:
            self._key = _key((yield self._keygen()))
            self.generated += 1
            request.headers["X-PAN-KEY"] = self._key
            yield request


# --- adapter --------------------------------------------------------------------------------------


class PanOsFirewall:
    """Implements `FirewallResponder` on one PAN-OS firewall (one vsys)."""

    def __init__(
        self, settings: PanOsSettings, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self._settings = settings
        url = settings.base_url.rstrip("/") + API
        self.auth = PanOsKeyAuth(
            url,
            settings.api_key.get_secret_value() if settings.api_key else None,
            settings.username,
            settings.password.get_secret_value() if settings.password else None,
        )
        self._client = httpx.AsyncClient(
            verify=tls_context(),
            base_url=settings.base_url,
            auth=self.auth,
            transport=transport,
            timeout=httpx.Timeout(settings.timeout_s, connect=10.0),
        )
        self._budget = RateBudget(settings.rate_per_minute)
        vsys = (
            f"/config/devices/entry[@name='{settings.device}']/vsys/entry[@name='{settings.vsys}']"
        )
        self._vsys = vsys
        self._group = f"{vsys}/address-group/entry[@name='{settings.address_group}']"

    async def aclose(self) -> None:
        await self._client.aclose()

    async def _call(
        self, params: dict[str, str], priority: Priority, *, missing_ok: bool = False
    ) -> ET.Element:
        response = await send(
            self._client,
            "POST",
            API,
            vendor=VENDOR,
            budget=self._budget,
            priority=priority,
            check=False,
            data=params,
        )
        return _check(response, missing_ok=missing_ok)

    async def _blocked(
        self, action: Literal["get", "show"], priority: Priority = Priority.ENRICHMENT
    ) -> list[Blocked]:
        """Garrison's objects in the group: `get` reads the candidate, `show` the running config."""
        group = await self._call(
            {"type": "config", "action": action, "xpath": self._group}, priority, missing_ok=True
        )
        members = _members(group)
        if members is None:
            raise PermanentToolError(
                f"{VENDOR}: address group {self._settings.address_group!r} not found in "
                f"{self._settings.vsys}: create it, referenced by a deny rule "
                "(GARRISON_PANOS_ADDRESS_GROUP)"
            )
        addresses = await self._call(
            {"type": "config", "action": action, "xpath": f"{self._vsys}/address"},
            priority,
            missing_ok=True,
        )
        found = (_to_blocked(e) for e in addresses.findall("./result/address/entry"))
        return [b for b in found if b is not None and b.name in members]

    async def _commit(self) -> None:
        cmd = "<commit></commit>"
        if self._settings.username and self._settings.api_key is None:
            admin = ET.Element("member")
            admin.text = self._settings.username
            cmd = (
                "<commit><partial><admin>"
                + ET.tostring(admin, encoding="unicode")
                + "</admin></partial></commit>"
            )
        job = _job_id(await self._call({"type": "commit", "cmd": cmd}, Priority.CONTAINMENT))
        if job is None:
            return
        deadline = time.monotonic() + self._settings.commit_timeout_s
        show = f"<show><jobs><id>{int(job)}</id></jobs></show>"
        while not _job_done(await self._call({"type": "op", "cmd": show}, Priority.CONTAINMENT)):
            if time.monotonic() > deadline:
                raise TransientToolError(f"{VENDOR}: commit job {job} still running")
            await asyncio.sleep(self._settings.commit_poll_s)

    async def _block(self, kind: Kind, value: str, comment: str, covered: bool) -> Change:
        if covered:
            # Already in the candidate: enforced, or applied by an attempt that lost its commit.
            running = await self._blocked("show", Priority.CONTAINMENT)
            if self._covered(kind, value, running):
                return Change(applied=False, detail="already blocked")
            await self._commit()
            return Change(applied=True, detail="blocked (committed a pending change)")
        now = datetime.now(UTC)
        item = Blocked(
            object_name(value),
            kind,
            value,
            block_description(comment, now, self._settings.block_ttl_h),
        )
        element = _address_element(item, self._settings.address_group)
        params = {"type": "config", "action": "set", "xpath": self._vsys, "element": element}
        await self._call(params, Priority.CONTAINMENT)
        await self._commit()
        return Change(applied=True, detail="blocked")

    async def _unblock(self, kind: Kind, value: str, original: str) -> Change:
        candidate = await self._blocked("get", Priority.CONTAINMENT)
        own = [b for b in candidate if b.kind is kind and b.value == value]
        if not own:
            if self._covered(kind, value, candidate):
                raise PermanentToolError(f"{original} is blocked by a wider Garrison entry")
            running = await self._blocked("show", Priority.CONTAINMENT)
            if any(b.kind is kind and b.value == value for b in running):
                await self._commit()  # removed by an attempt that lost its commit
                return Change(applied=True, detail="unblocked (committed a pending change)")
            return Change(applied=False, detail="already unblocked")
        for item in own:
            member = f"{self._group}/static/member[text()='{item.name}']"
            await self._call(
                {"type": "config", "action": "delete", "xpath": member},
                Priority.CONTAINMENT,
                missing_ok=True,  # another admin removed it meanwhile: the same end state
            )
            address = f"{self._vsys}/address/entry[@name='{item.name}']"
            await self._call(
                {"type": "config", "action": "delete", "xpath": address},
                Priority.CONTAINMENT,
                missing_ok=True,
            )
        await self._commit()
        return Change(applied=True, detail="unblocked")

    @staticmethod
    def _covered(kind: Kind, value: str, items: list[Blocked]) -> bool:
        if kind is Kind.FQDN:
            return domain_covered(value, [b.value for b in items if b.kind is Kind.FQDN])
        wanted = parse_ip_network(value)
        return any(covers(b.value, wanted) for b in items if b.kind is Kind.IP)

    # --- FirewallResponder ----------------------------------------------------------------------

    async def is_ip_blocked(self, ip: str) -> bool:
        value = canonical_ip(ip)
        return self._covered(Kind.IP, value, await self._blocked("show"))

    async def block_ip(self, ip: str, comment: str = "") -> Change:
        value = canonical_ip(ip)
        candidate = await self._blocked("get", Priority.CONTAINMENT)
        return await self._block(Kind.IP, value, comment, self._covered(Kind.IP, value, candidate))

    async def unblock_ip(self, ip: str) -> Change:
        return await self._unblock(Kind.IP, canonical_ip(ip), ip)

    async def is_domain_blocked(self, domain: str) -> bool:
        value = canonical_domain(domain)
        return self._covered(Kind.FQDN, value, await self._blocked("show"))

    async def block_domain(self, domain: str, comment: str = "") -> Change:
        value = canonical_domain(domain)
        candidate = await self._blocked("get", Priority.CONTAINMENT)
        covered = self._covered(Kind.FQDN, value, candidate)
        return await self._block(Kind.FQDN, value, comment, covered)

    async def unblock_domain(self, domain: str) -> Change:
        return await self._unblock(Kind.FQDN, canonical_domain(domain), domain)

    async def list_blocked(self) -> list[str]:
        running = await self._blocked("show")
        ips = sorted(b.value for b in running if b.kind is Kind.IP)
        return ips + sorted(b.value for b in running if b.kind is Kind.FQDN)
