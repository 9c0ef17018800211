"""Reading OCSF JSON: nested lookups, OCSF timestamps, users, hashes and device names.

OCSF objects arrive as parsed JSON; these readers never raise on an unexpected shape (a wrong type
reads as absent), so each caller decides what a missing value means and says so in its own error.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime

from simulations.importers.otrf.events import asset_id

Json = Mapping[str, object]
SHA256, SHA1, MD5 = 3, 2, 1  # fingerprint algorithm_id
HASH_NAMES = {MD5: "MD5", SHA1: "SHA1", SHA256: "SHA256"}
RFC1918 = tuple(ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"))


def dig(obj: object, path: str) -> object:
    """`dig(finding, "finding_info.analytic.uid")`; None when a step is missing or not an object."""
    for part in path.split("."):
        if not isinstance(obj, Mapping):
            return None
        obj = obj.get(part)
    return obj


def obj(value: object, path: str = "") -> Json:
    """The object at `path` (or `value` itself), or an empty one."""
    found = dig(value, path) if path else value
    return found if isinstance(found, Mapping) else {}


def objects(value: object, path: str) -> list[Json]:
    """The objects of the array at `path`, skipping anything else."""
    found = dig(value, path)
    return [o for o in found if isinstance(o, Mapping)] if isinstance(found, list) else []


def text(value: object, path: str = "") -> str | None:
    """A non-empty string or number at `path`, as text."""
    found = dig(value, path) if path else value
    if isinstance(found, bool):
        return None
    if isinstance(found, int | float):
        return str(found)
    if isinstance(found, str) and found.strip():
        return found
    return None


def integer(value: object, path: str = "") -> int | None:
    found = dig(value, path) if path else value
    if isinstance(found, bool):
        return None
    if isinstance(found, int):
        return found
    if isinstance(found, float) and found.is_integer():
        return int(found)
    if isinstance(found, str):
        try:
            return int(found, 16) if found.lower().startswith("0x") else int(found)
        except ValueError:
            return None
    return None


def timestamp(value: object) -> datetime | None:
    """OCSF `timestamp_t` (milliseconds since the epoch) or a `datetime_t` string, in UTC."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return datetime.fromtimestamp(value / 1000, UTC)
        except (OverflowError, OSError, ValueError):
            return None
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None


def event_time(raw: Json) -> datetime | None:
    """`time`, else `time_dt` (the datetime profile)."""
    return timestamp(raw.get("time")) or timestamp(raw.get("time_dt"))


def iso(moment: datetime) -> str:
    """Millisecond UTC, as the recorded-incident telemetry writes `@timestamp`."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def account(user: object) -> str | None:
    """An OCSF user as `DOMAIN\\name` (or `name` alone), keeping the recorded spelling."""
    name = text(user, "name")
    if name is None:
        return None
    domain = text(user, "domain")
    return f"{domain}\\{name}" if domain and "\\" not in name and "@" not in name else name


def host_of(device: object) -> tuple[str | None, str | None]:
    """(asset id, recorded host name) of an OCSF device or endpoint."""
    name = text(device, "hostname") or text(device, "name")
    return (asset_id(name), name) if name else (None, None)


def sha256(hashes: object) -> str | None:
    for fingerprint in hashes if isinstance(hashes, list) else []:
        value = text(fingerprint, "value")
        algorithm = integer(fingerprint, "algorithm_id")
        named = (text(fingerprint, "algorithm") or "").upper().replace("-", "")
        if value and (algorithm == SHA256 or named == "SHA256"):
            return value.lower()
    return None


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
