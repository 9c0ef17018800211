"""Address ranges Garrison treats alike everywhere: those no one outside a network can reach."""

from __future__ import annotations

import ipaddress

# Private (RFC 1918), shared (RFC 6598), loopback, link-local, multicast, reserved, unique-local.
# Documentation ranges (TEST-NET) are not here: they belong to no organisation. Such an address
# has no public reputation and reveals topology: never sent to a reputation service, never shared.
NON_ROUTABLE: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = tuple(
    ipaddress.ip_network(n)
    for n in (
        "0.0.0.0/8",
        "10.0.0.0/8",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "224.0.0.0/4",
        "240.0.0.0/4",
        "::/128",
        "::1/128",
        "fc00::/7",
        "fe80::/10",
        "ff00::/8",
    )
)
