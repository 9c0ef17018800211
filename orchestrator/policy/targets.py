"""How the policy recognises a target in a list of entity ids (the never-touch and protected
lists): hosts by their first label, identities with or without their `DOMAIN\\` prefix, domains
with their subdomains, addresses and networks by overlap. Pure string and `ipaddress` work, safe
inside workflow code."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from tools.accounts import identity_key as account_name
from tools.actions import TargetKind

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def host_key(value: str) -> str:
    """`PRD01.pandalab.com` and `prd01` are the same host."""
    return value.strip().lower().split(".", 1)[0]


def identity_key(value: str) -> str:
    """`contoso\\alice`, `alice@contoso.local` and `alice` are the same account: a never-touch
    or protected entry holds whatever its spelling (`tools.accounts`)."""
    return account_name(value)


def domain_key(value: str) -> str:
    return value.strip().lower().rstrip(".")


def parse_network(value: str) -> Network | None:
    """An address or CIDR as a network (an address is a /32 or /128); None if it is neither.

    An IPv4-mapped IPv6 address (`::ffff:10.0.0.1`) is the IPv4 address it maps.
    """
    try:
        network = ipaddress.ip_network(value.strip(), strict=False)
    except ValueError:
        return None
    if isinstance(network, ipaddress.IPv6Network) and network.prefixlen == 128:
        mapped = network.network_address.ipv4_mapped
        if mapped is not None:
            return ipaddress.IPv4Network(mapped)
    return network


def asset_part(target: str) -> str:
    """The asset of a `<asset id>:<thing>` target."""
    return target.split(":", 1)[0]


def target_listed(kind: TargetKind, target: str, entries: Iterable[str]) -> bool:
    """Whether a target of `kind` is one of `entries`, or for a network overlaps one of them."""
    match kind:
        case TargetKind.ASSET:
            return _host_listed(target, entries)
        case TargetKind.PROCESS | TargetKind.FILE | TargetKind.ARTEFACT:
            return _host_listed(asset_part(target), entries)
        case TargetKind.IDENTITY:
            key = identity_key(target)
            return any(identity_key(entry) == key for entry in entries)
        case TargetKind.DOMAIN:
            key = domain_key(target)
            return any(
                key == domain_key(entry) or key.endswith("." + domain_key(entry))
                for entry in entries
                if domain_key(entry)
            )
        case TargetKind.IP:
            network = parse_network(target)
            if network is None:
                return False
            return any(_overlaps(network, entry) for entry in entries)


def _host_listed(host: str, entries: Iterable[str]) -> bool:
    address = parse_network(host)
    if address is not None:
        return any(_overlaps(address, entry) for entry in entries)
    key = host_key(host)
    # Addresses are not hostnames: `10.0.0.5` must not read as the host `10`.
    return any(host_key(entry) == key for entry in entries if parse_network(entry) is None)


def _overlaps(network: Network, entry: str) -> bool:
    listed = parse_network(entry)
    if listed is None or listed.version != network.version:
        return False
    return network.overlaps(listed)  # pyright: ignore[reportArgumentType]
