"""The deterministic entity extractor: the only source of action targets.

It reads the typed fields of alerts (never free text such as titles), normalises hosts to asset
ids through the inventory, and keeps every value within the shape its kind allows, so that a
hostile string cannot become a CIDR, a wildcard or somebody else's host by being parsed loosely.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable

from agents.knowledge import is_system_account
from agents.models import ExtractedEntities
from tools.inventory.base import InventoryReader
from tools.models import Alert, Asset, Environment

_DOMAIN_RE = re.compile(
    r"^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{1,62}$"
)
_SHA256_RE = re.compile(r"^[0-9a-fA-F]{64}$")
MAX_PER_KIND = 50


def host_key(value: str) -> str:
    """Hosts compare case-insensitively by their first label."""
    return value.strip().lower().split(".", 1)[0]


def identity_key(value: str) -> str:
    """Identities compare with or without their `DOMAIN\\` prefix."""
    return value.strip().lower().rsplit("\\", 1)[-1]


def single_ip(value: str | None) -> str | None:
    """One address (never a network): a CIDR in an alert is data, not a target."""
    if not value:
        return None
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        return None


def is_routable_peer(ip: str) -> bool:
    """Addresses that can be an attacker endpoint: not loopback, link-local, multicast or any."""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return False
    return not (
        address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_unspecified
        or address.is_reserved
    )


def domain_name(value: str | None) -> str | None:
    if not value:
        return None
    name = value.strip().lower().rstrip(".")
    return name if _DOMAIN_RE.match(name) else None


def sha256(value: str | None) -> str | None:
    if value and _SHA256_RE.match(value.strip()):
        return value.strip().lower()
    return None


class AssetIndex:
    """Resolves what an alert calls a host (a name, an FQDN, an address) to an asset id."""

    def __init__(self, environment: Environment) -> None:
        self.assets = {a.id: a for a in environment.assets}
        self._by_key: dict[str, Asset] = {}
        self._by_ip: dict[str, Asset] = {}
        # an address that several records claim belongs to the most specific claim, the asset
        # with the fewest addresses: a workstation's one NIC, not a record that aggregates its
        # clients' addresses (inventories built from connection logs do that)
        for asset in sorted(environment.assets, key=lambda a: len(a.ips)):
            for ip in asset.ips:
                self._by_ip.setdefault(ip.strip(), asset)
        for asset in environment.assets:
            self._by_key.setdefault(host_key(asset.id), asset)
            if asset.hostname:
                self._by_key.setdefault(host_key(asset.hostname), asset)
        self.identities = {identity_key(i.id): i for i in environment.identities}
        self.internal_networks = list(environment.internal_networks)
        self.org_domains = {
            a.hostname.lower().split(".", 1)[1]
            for a in environment.assets
            if a.hostname and "." in a.hostname
        }

    def asset_for(self, host: str | None) -> Asset | None:
        if not host:
            return None
        ip = single_ip(host)
        if ip is not None:
            return self._by_ip.get(ip)
        return self._by_key.get(host_key(host))

    def asset_id(self, host: str) -> str:
        asset = self.asset_for(host)
        return asset.id if asset is not None else host.strip()

    def asset_for_ip(self, ip: str | None) -> Asset | None:
        return self._by_ip.get(ip.strip()) if ip else None

    def own_ips(self, asset_id: str) -> set[str]:
        """The addresses that resolve to this asset (not those a more specific record claims)."""
        asset = self.assets.get(asset_id)
        if asset is None:
            return set()
        return {ip for ip in asset.ips if self._by_ip.get(ip.strip()) is asset}

    def identity_id(self, user: str) -> str:
        identity = self.identities.get(identity_key(user))
        return identity.id if identity is not None else user.strip()


async def load_index(inventory: InventoryReader) -> AssetIndex:
    return AssetIndex(await inventory.environment())


def _unique(values: Iterable[str], key: Callable[[str], str] = str.lower) -> list[str]:
    seen: set[str] = set()
    out: list[str] = []
    for value in values:
        k = key(value)
        if value and k not in seen:
            seen.add(k)
            out.append(value)
    return out[:MAX_PER_KIND]


def extract_entities(alerts: list[Alert], index: AssetIndex) -> ExtractedEntities:
    """Entities from the typed fields of the alerts, hosts as asset ids where the inventory knows
    them. System accounts are kept out of users: no analyst disables SYSTEM."""
    hosts: list[str] = []
    users: list[str] = []
    ips: list[str] = []
    domains: list[str] = []
    hashes: list[str] = []
    processes: list[str] = []
    files: list[str] = []
    for alert in alerts:
        e = alert.entities
        host = index.asset_id(e.host) if e.host and e.host.strip() else None
        if host:
            hosts.append(host)
        if e.user and not is_system_account(e.user):
            users.append(index.identity_id(e.user))
        for raw in (e.src_ip, e.dst_ip):
            ip = single_ip(raw)
            if ip is None:
                continue
            asset = index.asset_for_ip(ip)
            if asset is not None and raw == e.src_ip:
                hosts.append(asset.id)
            if is_routable_peer(ip):
                ips.append(ip)
        domain = domain_name(e.domain)
        if domain:
            domains.append(domain)
        if host and e.process and e.process.pid is not None and e.process.pid > 0:
            processes.append(f"{host}:{e.process.pid}")
        if e.file:
            digest = sha256(e.file.sha256)
            if digest:
                hashes.append(digest)
            if host and (digest or e.file.path):
                files.append(f"{host}:{digest or (e.file.path or '').strip()}")
    return ExtractedEntities(
        hosts=_unique(hosts, host_key),
        users=_unique(users, identity_key),
        ips=_unique(ips),
        domains=_unique(domains),
        sha256=_unique(hashes),
        processes=_unique(processes),
        files=_unique(files),
    )
