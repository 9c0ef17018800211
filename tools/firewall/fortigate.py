"""Fortinet FortiGate (FortiOS) firewall over the REST API (`/api/v2/cmdb/...`).

Garrison blocks by membership of an address group (`GARRISON_FORTIGATE_ADDRESS_GROUP`) that the
operator's deny policy references: each block is a firewall address (`ipmask` or `fqdn`) named
`garrison-<value>`, its `comment` carrying when it was blocked and when the block expires, added
to the group's `member` list. FortiOS applies changes at once (no commit). Its "already" answers
are errors in the JSON envelope (`"error": -5` on creating an existing object, 404 on deleting a
missing one); both mean the state wanted is there and count as success.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Generator
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import httpx
from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from tools.errors import NotFoundError, PermanentToolError, TransientToolError
from tools.firewall.targets import (
    block_description,
    canonical_domain,
    canonical_ip,
    covers,
    domain_covered,
    object_name,
)
from tools.http import Priority, RateBudget, raise_for_status, send, tls_context
from tools.results import Change
from tools.vendor_settings import VendorSettings

VENDOR = "FortiGate"
CMDB = "/api/v2/cmdb/firewall"
PREFIX = "garrison-"
ALREADY_EXISTS = -5
NOT_FOUND = -3


class FortiGateSettings(VendorSettings):
    """`GARRISON_FORTIGATE_*`: a REST API administrator's token."""

    model_config = SettingsConfigDict(env_prefix="GARRISON_FORTIGATE_", extra="ignore", frozen=True)

    api_token: SecretStr
    vdom: str = Field(default="root", min_length=1)
    address_group: str = Field(default="garrison-blocked", min_length=1)
    block_ttl_h: float | None = Field(default=None, gt=0)


class AddressType(StrEnum):
    IPMASK = "ipmask"
    FQDN = "fqdn"


@dataclass(frozen=True)
class Blocked:
    name: str
    type: AddressType
    value: str  # a canonical address/network, or a domain
    comment: str = ""


# --- wire mapping (private, unit-tested) ---------------------------------------------------------


def _envelope(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _check(response: httpx.Response, *, already_ok: bool = False) -> dict[str, Any]:
    """The one mapping of FortiOS answers. FortiOS reports a refused cmdb change as HTTP 500 with
    a negative `error` in its envelope: that is permanent, unlike a 5xx without one."""
    body = _envelope(response)
    code = body.get("error")
    if isinstance(code, int) and code < 0 and response.status_code >= 400:
        if already_ok and code in (ALREADY_EXISTS, NOT_FOUND):
            return body
        message = (
            f"{VENDOR}: {response.request.method} {response.request.url.path} -> "
            f"{response.status_code} error {code}: {body.get('cli_error', '')}".strip()
        )
        if code == NOT_FOUND:
            raise NotFoundError(message)
        raise PermanentToolError(message)
    if already_ok and response.status_code == 404:
        return body
    raise_for_status(response, VENDOR)
    if body.get("status") not in (None, "success"):
        raise TransientToolError(f"{VENDOR}: unexpected answer {response.text[:200]}")
    return body


def _subnet(value: str) -> str:
    """`203.0.113.0/24` -> `203.0.113.0 255.255.255.0` (FortiOS's own form)."""
    network = ipaddress.IPv4Network(value)
    return f"{network.network_address} {network.netmask}"


def _to_blocked(result: dict[str, Any]) -> Blocked | None:
    """A firewall address, if Garrison made it (its name) and it is an ipmask or an FQDN."""
    name = str(result.get("name", ""))
    if not name.startswith(PREFIX):
        return None
    comment = str(result.get("comment", ""))
    kind = result.get("type")
    if kind == AddressType.IPMASK:
        ip, _, mask = str(result.get("subnet", "")).partition(" ")
        return Blocked(name, AddressType.IPMASK, canonical_ip(f"{ip}/{mask or 32}"), comment)
    if kind == AddressType.FQDN and result.get("fqdn"):
        return Blocked(name, AddressType.FQDN, canonical_domain(str(result["fqdn"])), comment)
    return None


def _to_payload(item: Blocked) -> dict[str, str]:
    payload = {"name": item.name, "type": item.type.value, "comment": item.comment}
    if item.type is AddressType.IPMASK:
        payload["subnet"] = _subnet(item.value)
    else:
        payload["fqdn"] = item.value
    return payload


def _members(body: dict[str, Any]) -> list[str]:
    results = body.get("results") or []
    group = results[0] if isinstance(results, list) and results else {}
    return [str(m["name"]) for m in group.get("member", []) if isinstance(m, dict)]


# --- auth -----------------------------------------------------------------------------------------


class FortiGateTokenAuth(httpx.Auth):
    """`Authorization: Bearer <token>`. FortiOS REST API tokens do not expire and cannot be
    refreshed by the client: a refused token is an `AuthError` for the operator to fix."""

    def __init__(self, token: str) -> None:
        self._token = token

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self._token}"
        yield request


# --- adapter --------------------------------------------------------------------------------------


class FortiGateFirewall:
    """Implements `FirewallResponder` on one FortiGate VDOM (IPv4 addresses and FQDNs)."""

    def __init__(
        self, settings: FortiGateSettings, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self._settings = settings
        self._client = httpx.AsyncClient(
            verify=tls_context(),
            base_url=settings.base_url,
            auth=FortiGateTokenAuth(settings.api_token.get_secret_value()),
            transport=transport,
            timeout=httpx.Timeout(settings.timeout_s, connect=10.0),
            params={"vdom": settings.vdom},
        )
        self._budget = RateBudget(settings.rate_per_minute)
        self._group_path = f"{CMDB}/addrgrp/{settings.address_group}"

    async def aclose(self) -> None:
        await self._client.aclose()

    async def _call(
        self,
        method: str,
        path: str,
        priority: Priority,
        *,
        already_ok: bool = False,
        **kwargs: Any,
    ) -> dict[str, Any]:
        response = await send(
            self._client,
            method,
            path,
            vendor=VENDOR,
            budget=self._budget,
            priority=priority,
            check=False,
            **kwargs,
        )
        return _check(response, already_ok=already_ok)

    async def _state(self, priority: Priority) -> tuple[list[str], list[Blocked]]:
        """The group's members, and Garrison's addresses among them."""
        try:
            group = await self._call("GET", self._group_path, priority)
        except NotFoundError:
            raise PermanentToolError(
                f"{VENDOR}: address group {self._settings.address_group!r} not found in VDOM "
                f"{self._settings.vdom}: create it, referenced by a deny policy "
                "(GARRISON_FORTIGATE_ADDRESS_GROUP)"
            ) from None
        members = _members(group)
        addresses = await self._call(
            "GET", f"{CMDB}/address", priority, params={"filter": f"name=@{PREFIX}"}
        )
        found = (_to_blocked(r) for r in addresses.get("results", []) if isinstance(r, dict))
        return members, [b for b in found if b is not None and b.name in members]

    async def _put_members(self, members: list[str]) -> None:
        body = {"member": [{"name": name} for name in members]}
        await self._call("PUT", self._group_path, Priority.CONTAINMENT, json=body)

    @staticmethod
    def _covered(kind: AddressType, value: str, items: list[Blocked]) -> bool:
        if kind is AddressType.FQDN:
            return domain_covered(value, [b.value for b in items if b.type is kind])
        wanted = ipaddress.ip_network(value)
        return any(covers(b.value, wanted) for b in items if b.type is kind)

    async def _block(self, kind: AddressType, value: str, comment: str) -> Change:
        members, blocked = await self._state(Priority.CONTAINMENT)
        if self._covered(kind, value, blocked):
            return Change(applied=False, detail="already blocked")
        if kind is AddressType.IPMASK and ipaddress.ip_network(value).version == 6:
            raise PermanentToolError(f"{VENDOR}: IPv6 blocks (firewall/address6) not supported")
        now = datetime.now(UTC)
        item = Blocked(
            object_name(value),
            kind,
            value,
            block_description(comment, now, self._settings.block_ttl_h),
        )
        # An object left by an attempt that lost its answer answers -5: it is the one we want.
        await self._call(
            "POST", f"{CMDB}/address", Priority.CONTAINMENT, already_ok=True, json=_to_payload(item)
        )
        await self._put_members([*members, item.name])
        return Change(applied=True, detail="blocked")

    async def _unblock(self, kind: AddressType, value: str, original: str) -> Change:
        members, blocked = await self._state(Priority.CONTAINMENT)
        own = {b.name for b in blocked if b.type is kind and b.value == value}
        if not own:
            if self._covered(kind, value, blocked):
                raise PermanentToolError(f"{original} is blocked by a wider Garrison entry")
            return Change(applied=False, detail="already unblocked")
        await self._put_members([m for m in members if m not in own])
        for name in sorted(own):
            await self._call(
                "DELETE", f"{CMDB}/address/{name}", Priority.CONTAINMENT, already_ok=True
            )
        return Change(applied=True, detail="unblocked")

    # --- FirewallResponder ----------------------------------------------------------------------

    async def is_ip_blocked(self, ip: str) -> bool:
        _, blocked = await self._state(Priority.ENRICHMENT)
        return self._covered(AddressType.IPMASK, canonical_ip(ip), blocked)

    async def block_ip(self, ip: str, comment: str = "") -> Change:
        return await self._block(AddressType.IPMASK, canonical_ip(ip), comment)

    async def unblock_ip(self, ip: str) -> Change:
        return await self._unblock(AddressType.IPMASK, canonical_ip(ip), ip)

    async def is_domain_blocked(self, domain: str) -> bool:
        _, blocked = await self._state(Priority.ENRICHMENT)
        return self._covered(AddressType.FQDN, canonical_domain(domain), blocked)

    async def block_domain(self, domain: str, comment: str = "") -> Change:
        return await self._block(AddressType.FQDN, canonical_domain(domain), comment)

    async def unblock_domain(self, domain: str) -> Change:
        return await self._unblock(AddressType.FQDN, canonical_domain(domain), domain)

    async def list_blocked(self) -> list[str]:
        _, blocked = await self._state(Priority.ENRICHMENT)
        ips = sorted(b.value for b in blocked if b.type is AddressType.IPMASK)
        return ips + sorted(b.value for b in blocked if b.type is AddressType.FQDN)
