"""The incident's environment from what the OCSF input says about its devices and users.

- Assets: the hosts of the alerts and of the kept events. `id` is the first label of
  `device.hostname` (else `device.name`) in upper case, `hostname` the full name; `ips` are
  `device.ip` (else the local address of the host's outbound connections); `kind` is
  `domain_controller` when the host logs Kerberos tickets (4768/4769) or is named like one, else
  by `device.type_id` (1 server; 2-5 workstation; 9-15 network device), else by name; `os` is
  `device.os.type` (else `name`) in lower case, or `windows` for hosts of flat Windows events;
  `owner` is `device.owner`, else the host's most frequent interactive user.
- Identities: the alerts' users and the hosts' interactive users, SYSTEM and machine accounts left
  out; `admin` (privileged) when a user object says `type_id` 2 or `is_privileged`, or the user
  got special privileges (4672); `service` for `type_id` 4; else `user`.
- `internal_networks`: the RFC 1918 blocks that hold an address seen in the findings or events.
- `protected`: the domain controllers.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from simulations.importers.ocsf.fields import (
    Json,
    account,
    host_of,
    integer,
    obj,
    objects,
    private_networks,
    text,
)
from simulations.importers.otrf.entities import is_system_account
from simulations.importers.otrf.environment import CRITICALITY, HostFacts, asset_kind
from simulations.importers.otrf.events import Event
from tools.models import Alert, Asset, AssetKind, Criticality, Environment, Identity, IdentityKind

DEVICE_KINDS = {
    1: AssetKind.SERVER,
    **dict.fromkeys((2, 3, 4, 5), AssetKind.WORKSTATION),
    **dict.fromkeys(range(9, 16), AssetKind.NETWORK_DEVICE),
}
USER_PATHS = ("actor.user", "user", "process.user", "actor.process.user", "device.owner")
ADDRESS_PATHS = ("device.ip", "src_endpoint.ip", "dst_endpoint.ip")
ADDRESS_FIELDS = ("SourceIp", "DestinationIp", "IpAddress")


@dataclass
class Inventory:
    """What the input says about devices and users, gathered while it streams by."""

    facts: HostFacts = field(default_factory=HostFacts)
    hostnames: dict[str, str] = field(default_factory=dict)
    ips: dict[str, set[str]] = field(default_factory=dict)
    os: dict[str, str] = field(default_factory=dict)
    kinds: dict[str, AssetKind] = field(default_factory=dict)
    owners: dict[str, str] = field(default_factory=dict)
    admins: set[str] = field(default_factory=set)
    services: set[str] = field(default_factory=set)
    addresses: set[str] = field(default_factory=set)
    windows_hosts: set[str] = field(default_factory=set)  # hosts with flat Windows events

    def observe_ocsf(self, raw: Json) -> None:
        """A finding or an OCSF event: its device, its users, its addresses."""
        for holder in (raw, *objects(raw, "evidences")):
            self._device(obj(holder, "device"))
            for path in USER_PATHS:
                self._user(obj(holder, path))
            self.addresses |= {a for p in ADDRESS_PATHS if (a := text(holder, p))}

    def observe_event(self, event: Event) -> None:
        """A telemetry event (mapped or flat): host facts, addresses."""
        self.facts.observe(event)
        if "ocsf_class_uid" not in event and isinstance(event.get("host"), str):
            self.windows_hosts.add(str(event["host"]))
        self.addresses |= {a for f in ADDRESS_FIELDS if (a := text(event.get(f)))}

    def _device(self, device: Json) -> None:
        host, name = host_of(device)
        if host is None or name is None:
            return
        if "." in name or host not in self.hostnames:
            self.hostnames[host] = name
        if ip := text(device, "ip"):
            self.ips.setdefault(host, set()).add(ip)
        if os := text(device, "os.type") or text(device, "os.name"):
            self.os.setdefault(host, os.lower())
        if (kind := DEVICE_KINDS.get(integer(device, "type_id") or 0)) is not None:
            self.kinds.setdefault(host, kind)
        if owner := account(obj(device, "owner")):
            self.owners.setdefault(host, owner.lower())

    def _user(self, user: Json) -> None:
        name = account(user)
        if name is None:
            return
        type_id = integer(user, "type_id")
        if type_id == 2 or user.get("is_privileged") is True:
            self.admins.add(name.lower())
        if type_id == 4:
            self.services.add(name.lower())


def build_environment(
    inventory: Inventory, alerts: list[Alert], telemetry: list[Event]
) -> Environment:
    hosts = {a.entities.host for a in alerts if a.entities.host}
    hosts |= {str(e["host"]) for e in telemetry if isinstance(e.get("host"), str)}
    assets = [_asset(host, inventory) for host in sorted(hosts)]
    facts = inventory.facts
    users = {a.entities.user for a in alerts if a.entities.user}
    users |= {u for h in hosts for u in facts.interactive.get(h, Counter())}
    identities = [
        Identity(id=user, kind=kind, privileged=kind is IdentityKind.ADMIN)
        for user in sorted(users)
        if not is_system_account(user)
        for kind in [_identity_kind(user, inventory)]
    ]
    return Environment(
        assets=assets,
        identities=identities,
        internal_networks=private_networks(inventory.addresses),
        protected=[a.id for a in assets if a.kind is AssetKind.DOMAIN_CONTROLLER],
    )


def _asset(host: str, inventory: Inventory) -> Asset:
    facts = inventory.facts
    named = asset_kind(host, facts)
    kind = named if named is AssetKind.DOMAIN_CONTROLLER else inventory.kinds.get(host, named)
    ips = inventory.ips.get(host) or set(facts.ips.get(host, Counter()))
    owner = inventory.owners.get(host)
    if owner is None and (frequent := facts.interactive.get(host, Counter()).most_common(1)):
        owner = frequent[0][0]
    return Asset(
        id=host,
        hostname=inventory.hostnames.get(host) or facts.hostnames.get(host),
        kind=kind,
        criticality=CRITICALITY.get(kind, Criticality.MEDIUM),
        ips=sorted(ips)[:4],
        os=inventory.os.get(host) or ("windows" if host in inventory.windows_hosts else None),
        owner=owner,
    )


def _identity_kind(user: str, inventory: Inventory) -> IdentityKind:
    if user in inventory.admins or user in inventory.facts.privileged:
        return IdentityKind.ADMIN
    if user in inventory.services:
        return IdentityKind.SERVICE
    return IdentityKind.USER
