"""Reading OCSF JSON: nested lookups, OCSF timestamps, users, hashes and device names.

OCSF objects arrive as parsed JSON; these readers never raise on an unexpected shape (a wrong type
reads as absent), so each caller decides what a missing value means and says so in its own error.
The readers a finding needs live in `orchestrator.ingest.shapes.values` (live ingestion reads
findings too, and `orchestrator` may not import `simulations`) and are re-exported here; the
Sysmon-facing ones stay.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from datetime import UTC, datetime

from orchestrator.ingest.shapes.values import (
    Json,
    account,
    dig,
    event_time,
    host_of,
    integer,
    obj,
    objects,
    sha256,
    text,
    timestamp,
)

__all__ = [
    "Json",
    "account",
    "dig",
    "event_time",
    "host_of",
    "integer",
    "iso",
    "obj",
    "objects",
    "private_networks",
    "sha256",
    "sysmon_hashes",
    "text",
    "timestamp",
]
SHA256, SHA1, MD5 = 3, 2, 1  # fingerprint algorithm_id
HASH_NAMES = {MD5: "MD5", SHA1: "SHA1", SHA256: "SHA256"}
RFC1918 = tuple(ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"))


def iso(moment: datetime) -> str:
    """Millisecond UTC, as the recorded-incident telemetry writes `@timestamp`."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def sysmon_hashes(hashes: object) -> str | None:
    """OCSF fingerprints as Sysmon writes them: `MD5=...,SHA1=...,SHA256=...`."""
    parts = []
    for fingerprint in hashes if isinstance(hashes, list) else []:
        name = HASH_NAMES.get(integer(fingerprint, "algorithm_id") or 0)
        value = text(fingerprint, "value")
        if name and value:
            parts.append(f"{name}={value.upper()}")
    return ",".join(parts) or None


def private_networks(addresses: Iterable[str]) -> list[str]:
    """The RFC 1918 blocks that hold any of `addresses`."""
    found: set[str] = set()
    for address in addresses:
        try:
            parsed = ipaddress.ip_address(address)
        except ValueError:
            continue
        found |= {str(n) for n in RFC1918 if parsed.version == 4 and parsed in n}
    return sorted(found, key=lambda n: ipaddress.ip_network(n))
