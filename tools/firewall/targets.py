"""How every firewall integration reads and names what it blocks: addresses and networks in one
canonical form, domains and the subdomains they cover, and the tagged, described objects Garrison
creates (the in-memory twin, PAN-OS and FortiGate alike)."""

from __future__ import annotations

import hashlib
import ipaddress
import re
from datetime import datetime, timedelta

from tools.errors import PermanentToolError

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

TAG = "garrison"
MAX_NAME = 63  # PAN-OS object names: 63 characters of letters, digits, '.', '_', '-', ' '
MAX_DESCRIPTION = 255


def parse_ip_network(value: str) -> Network:
    try:
        return ipaddress.ip_network(value.strip(), strict=False)
    except ValueError:
        raise PermanentToolError(f"{value!r} is not an IP address or network") from None


def canonical_ip(value: str) -> str:
    """`10.0.5.13`, `10.0.5.13/32` -> `10.0.5.13`; `10.0.5.0/24` stays a network."""
    network = parse_ip_network(value)
    if network.num_addresses == 1:
        return str(network.network_address)
    return str(network)


def covers(entry: str, wanted: Network) -> bool:
    blocked = parse_ip_network(entry)
    if isinstance(blocked, ipaddress.IPv4Network) and isinstance(wanted, ipaddress.IPv4Network):
        return wanted.subnet_of(blocked)
    if isinstance(blocked, ipaddress.IPv6Network) and isinstance(wanted, ipaddress.IPv6Network):
        return wanted.subnet_of(blocked)
    return False


def canonical_domain(value: str) -> str:
    domain = value.strip().lower().rstrip(".")
    if not domain or any(c.isspace() or c in "/:\\@" for c in domain):
        raise PermanentToolError(f"{value!r} is not a domain name")
    return domain


def domain_covered(domain: str, entries: list[str]) -> bool:
    return any(domain == entry or domain.endswith("." + entry) for entry in entries)


def object_name(value: str) -> str:
    """`garrison-203.0.113.0_24`; values too long for a PAN-OS name keep a hash suffix."""
    name = f"{TAG}-" + re.sub(r"[^A-Za-z0-9._-]", "_", value.replace(":", "-"))
    if len(name) <= MAX_NAME:
        return name
    digest = hashlib.sha256(value.encode()).hexdigest()[:12]
    return f"{name[: MAX_NAME - 13]}-{digest}"


def block_description(comment: str, now: datetime, ttl_h: float | None) -> str:
    expires = (now + timedelta(hours=ttl_h)).isoformat(timespec="seconds") if ttl_h else "never"
    text = f"blocked by Garrison {now.isoformat(timespec='seconds')}; expires {expires}"
    return (f"{text}; {comment}" if comment else text)[:MAX_DESCRIPTION]
