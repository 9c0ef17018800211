"""What of an incident may leave the organisation: its candidate indicators (addresses, domains,
hashes, accounts) from the alerts' typed fields and the response's targets, each classed as
external or internal against the inventory, and released or withheld by the sharing policy.

Internal means: an address inside the inventory's networks, held by an asset or not routable
(`NON_ROUTABLE`); a domain that is an asset's name, under an asset's own DNS domain, or under a
suffix that only resolves inside a network (`.local`, `.corp`, ...); any account (accounts are
people, personal data, or the organisation's own services). Free text (titles, command lines,
paths) is never read: it cannot be checked, so it never leaves.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from enum import StrEnum

from agents.entities import AssetIndex, extract_entities
from orchestrator.intel.policy import SharingPolicy, Tlp
from tools.actions import ActionKind
from tools.addresses import NON_ROUTABLE
from tools.models import Alert, Environment, in_networks

INTERNAL_SUFFIXES = (".local", ".localhost", ".internal", ".home.arpa", ".lan", ".corp", ".intra")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_DOMAIN = re.compile(
    r"^(?=.{1,253}$)([a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{1,62}$"
)
CONTAINED_BY = {
    ActionKind.BLOCK_IP: "ip",
    ActionKind.BLOCK_DOMAIN: "domain",
    ActionKind.QUARANTINE_FILE: "sha256",
    ActionKind.DISABLE_ACCOUNT: "account",
    ActionKind.RESET_CREDENTIALS: "account",
    ActionKind.REVOKE_SESSIONS: "account",
}


class ObservableKind(StrEnum):
    IPV4 = "ipv4-addr"
    IPV6 = "ipv6-addr"
    DOMAIN = "domain-name"
    SHA256 = "file"
    ACCOUNT = "user-account"


@dataclass
class Candidate:
    kind: ObservableKind
    value: str
    internal: bool
    contained: bool = False  # a containment action targeted it: the response confirmed it
    alerts: list[Alert] = field(default_factory=list)


class Inventory:
    """The inventory's view of what is the organisation's own."""

    def __init__(self, environment: Environment) -> None:
        self.environment = environment
        self.index = AssetIndex(environment)
        self._asset_ips = {ip.strip() for a in environment.assets for ip in a.ips}
        self._host_labels = {
            name.strip().lower().split(".", 1)[0]
            for a in environment.assets
            for name in (a.id, a.hostname or "")
            if name.strip()
        }
        self._dns_domains = {
            a.hostname.strip().lower().split(".", 1)[1]
            for a in environment.assets
            if a.hostname and "." in a.hostname.strip()
        }

    def internal_address(self, value: str) -> bool:
        try:
            address = ipaddress.ip_address(value)
        except ValueError:
            return True  # not an address we can reason about: never shared as one
        if value in self._asset_ips or any(address in n for n in NON_ROUTABLE):
            return True
        return in_networks(value, list(self.environment.internal_networks))

    def internal_domain(self, value: str) -> bool:
        name = value.strip().lower().rstrip(".")
        if name.endswith(INTERNAL_SUFFIXES) or name.split(".", 1)[0] in self._host_labels:
            return True
        return any(name == d or name.endswith("." + d) for d in self._dns_domains)


def candidates(
    alerts: list[Alert], actions: list[tuple[ActionKind, str]], inventory: Inventory
) -> list[Candidate]:
    """Every indicator the incident names, once each, in a stable order."""
    found: dict[tuple[ObservableKind, str], Candidate] = {}

    def add(kind: ObservableKind, value: str, internal: bool, alert: Alert | None = None) -> None:
        candidate = found.setdefault((kind, value), Candidate(kind, value, internal))
        if alert is not None and alert not in candidate.alerts:
            candidate.alerts.append(alert)

    for alert in alerts:
        entities = extract_entities([alert], inventory.index)
        for ip in entities.ips:
            add(_ip_kind(ip), ip, inventory.internal_address(ip), alert)
        for domain in entities.domains:
            add(ObservableKind.DOMAIN, domain.lower(), inventory.internal_domain(domain), alert)
        for digest in entities.sha256:
            add(ObservableKind.SHA256, digest.lower(), False, alert)
        for user in entities.users:
            add(ObservableKind.ACCOUNT, user, True, alert)
    for kind, target in actions:
        value = _contained_value(kind, target, inventory)
        if value is None:
            continue
        found.setdefault(value[:2], Candidate(value[0], value[1], value[2])).contained = True
    return sorted(found.values(), key=lambda c: (c.kind.value, c.value))


def released(candidate: Candidate, policy: SharingPolicy, tlp: Tlp) -> bool:
    if not candidate.internal:
        return True
    if candidate.kind is ObservableKind.ACCOUNT:
        return policy.releases("accounts", tlp)
    if candidate.kind is ObservableKind.DOMAIN:
        return policy.releases("hosts", tlp)
    return policy.releases("addresses", tlp)


def _contained_value(
    kind: ActionKind, target: str, inventory: Inventory
) -> tuple[ObservableKind, str, bool] | None:
    what = CONTAINED_BY.get(kind)
    target = target.strip()
    if what == "ip":
        try:
            ipaddress.ip_address(target)
        except ValueError:
            return None  # a network: data, not one indicator
        return _ip_kind(target), target, inventory.internal_address(target)
    if what == "domain" and _DOMAIN.match(target.lower()):
        return ObservableKind.DOMAIN, target.lower(), inventory.internal_domain(target)
    if what == "sha256":
        digest = target.rsplit(":", 1)[-1].strip().lower()
        return (ObservableKind.SHA256, digest, False) if _SHA256.match(digest) else None
    if what == "account":
        return ObservableKind.ACCOUNT, inventory.index.identity_id(target), True
    return None


def _ip_kind(value: str) -> ObservableKind:
    return ObservableKind.IPV6 if ":" in value else ObservableKind.IPV4
