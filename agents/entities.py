"""The deterministic entity extractor: the only source of action targets.

It reads the typed fields of alerts (never free text such as titles), normalises hosts to asset
ids and accounts to identity ids through the inventory, and keeps every value within the shape
its kind allows, so that a hostile string cannot become a CIDR, a wildcard or somebody else's
host by being parsed loosely. An account is one account whatever its spelling (`DOMAIN\\user`,
`user@domain.fqdn`: `tools.accounts`), and only a person's account is ever a user entity: SYSTEM,
ANONYMOUS LOGON, DWM-1, machine accounts and the like are the system's, not anyone to disable.
Accounts named by events other than the alerts (the services of Kerberos tickets, the users of
an attacker's command line) are read by meaning (`roasted_services`, `command_line_accounts`).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from agents.models import ExtractedEntities
from tools.accounts import (
    RC4_HMAC,
    AccountBook,
    AccountKind,
    account_kind,
    command_accounts,
    netbios_of,
    parse_account,
)
from tools.accounts import identity_key as account_name
from tools.inventory.base import InventoryReader
from tools.models import Alert, Asset, Environment
from tools.results import AccountEvent

_DOMAIN_RE = re.compile(
    r"^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{1,62}$"
)
_SHA256_RE = re.compile(r"^[0-9a-fA-F]{64}$")
MAX_PER_KIND = 50


def host_key(value: str) -> str:
    """Hosts compare case-insensitively by their first label."""
    return value.strip().lower().split(".", 1)[0]


def identity_key(value: str) -> str:
    """Identities compare with or without their domain, whatever its spelling: `CORP\\alice`,
    `alice@corp.local` and `alice` all compare as `alice`."""
    return account_name(value)


def is_person(user: str | None) -> bool:
    """A person's account (or a service account people made): never SYSTEM, LOCAL/NETWORK
    SERVICE, ANONYMOUS LOGON, DWM-n/UMFD-n, NT SERVICE\\*, a machine account or krbtgt."""
    return account_kind(user) is AccountKind.PERSON


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
        # what a run knows of the estate's accounts: the inventory's identities and the owners
        # of its assets, with the DNS domains of its hostnames as aliases of their NetBIOS names
        owners = [a.owner for a in environment.assets if a.owner]
        self.accounts = AccountBook(
            [*(i.id for i in environment.identities), *owners], self.org_domains
        )

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
        """The inventory's id of the account, whatever its spelling; else its canonical
        `netbios\\name` spelling."""
        return self.accounts.resolve(user) or user.strip()

    def host_domain(self, host: str | None) -> str | None:
        """The DNS domain of an asset's hostname (`ws07.corp.local` -> `corp.local`)."""
        asset = self.asset_for(host)
        name = (asset.hostname or "") if asset is not None else ""
        return name.lower().split(".", 1)[1] if "." in name else None

    def qualified_id(
        self, user: str | None, host: str | None = None, actor: str | None = None
    ) -> str | None:
        """The inventory's id of an account named on `host` by something `actor` ran: a bare
        name takes the domain of the acting account (a domain account's, not a local one's),
        else the host's (`tools.accounts.AccountBook.qualify`). None when nothing says which
        account a bare name is. `.\\name` is the host's own local account."""
        text = (user or "").strip()
        if text.startswith(".\\") and host:
            text = f"{self.asset_id(host)}\\{text[2:]}"
        acting = parse_account(actor) if actor else None
        local = acting is not None and host_key(acting.domain or "") == host_key(host or "-")
        contexts = [acting.domain if acting is not None and not local else None]
        return self.accounts.qualify(text, *contexts, self.host_domain(host))

    def estate_domain(self, domain: str | None) -> bool:
        """Whether a domain is the organisation's (its identities', or its hostnames' DNS
        domains): credentials of another domain are not the estate's to contain."""
        if not domain:
            return False
        key = netbios_of(domain)
        return self.accounts.knows_domain(domain) or any(
            key == netbios_of(d) for d in self.org_domains
        )


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
    them, accounts as identity ids. Only people's accounts are users: no analyst disables
    SYSTEM, ANONYMOUS LOGON or a machine account."""
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
        if e.user and is_person(e.user):
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


def roasted_services(
    events: list[AccountEvent], index: AssetIndex, requesters: set[str] | None = None
) -> list[str]:
    """The service accounts whose tickets were requested with RC4 (Kerberoasting: a ticket
    encrypted with the account's password hash, cracked offline), as identity ids: people's
    accounts only (a machine account's or krbtgt's key is random and long), and only requests
    by the given requesters (identity keys) when some are given."""
    found: list[str] = []
    for event in events:
        if event.encryption != RC4_HMAC or not event.success or not event.services:
            continue
        if requesters is not None and not any(identity_key(a) in requesters for a in event.actors):
            continue
        found += [index.identity_id(s) for s in event.services if is_person(s)]
    return _unique(found, identity_key)


@dataclass(frozen=True)
class CommandLineAccounts:
    """People's accounts an attacker's command line names, as identity ids: `used` (it runs as
    them or hands over their secret), `mentioned` (only named), and `unresolved`, bare names
    nothing qualifies with a domain (reported, never a target)."""

    used: list[str]
    mentioned: list[str]
    unresolved: list[str]


def command_line_accounts(
    cmd_line: str | None, index: AssetIndex, host: str | None = None, actor: str | None = None
) -> CommandLineAccounts:
    """The accounts of `runas /user:X`, `/user:X /rc4:...`, `psexec -u X -p ...` (used) and of
    `net user X /domain` or a filter's `/user:X` (mentioned), each qualified with the domain it
    was used in: the command's own `/domain:`, else the acting account's, else the host's
    (`AssetIndex.qualified_id`)."""
    used: list[str] = []
    mentioned: list[str] = []
    unresolved: list[str] = []
    for found in command_accounts(cmd_line):
        if found.account.kind is not AccountKind.PERSON:
            continue
        spelled = (
            f"{found.account.domain}\\{found.account.name}"
            if found.account.domain
            else found.account.name
        )
        qualified = index.qualified_id(spelled, host, actor)
        if qualified is None:
            unresolved.append(found.account.name)
            continue
        (used if found.used else mentioned).append(qualified)
    return CommandLineAccounts(
        used=_unique(used, identity_key),
        mentioned=_unique(mentioned, identity_key),
        unresolved=_unique(unresolved),
    )
