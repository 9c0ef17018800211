"""Partners' intelligence as `SharedIndicator`s: STIX 2.1 indicators (their patterns read with
stix2-patterns, only `=` comparisons on addresses, domain names and SHA-256 hashes) and MISP
event attributes (`ip-dst`, `ip-src`, their `|port` forms, `domain`, `hostname`, `domain|ip`,
`sha256`, `filename|sha256`). Every value is checked for its kind's shape; anything else is
skipped, never guessed at.

Verdicts: a STIX indicator typed `malicious-activity`, `attribution` or `compromised` is
MALICIOUS unless its confidence is under 70, then SUSPICIOUS, as is every other indicator type;
a MISP attribute flagged `to_ids` is MALICIOUS (the producer says: detect on it), others
SUSPICIOUS. Revoked or expired indicators are skipped.
"""

from __future__ import annotations

import ipaddress
import re
from datetime import UTC, datetime
from typing import Any

from stix2patterns.exceptions import ParseException
from stix2patterns.v21.pattern import Pattern

from tools.intel.base import SharedIndicator
from tools.models import IndicatorKind
from tools.results import ReputationVerdict

MALICIOUS_TYPES = {"malicious-activity", "attribution", "compromised"}
MALICIOUS_CONFIDENCE = 70
MISP_IDS_CONFIDENCE = 75
MISP_OTHER_CONFIDENCE = 40
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_DOMAIN = re.compile(
    r"^(?=.{1,253}$)([a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{1,62}$"
)
_STIX_PATHS = {
    ("ipv4-addr", "value"): IndicatorKind.IP,
    ("ipv6-addr", "value"): IndicatorKind.IP,
    ("domain-name", "value"): IndicatorKind.DOMAIN,
    ("file", "hashes.SHA-256"): IndicatorKind.SHA256,
    ("file", "hashes.SHA256"): IndicatorKind.SHA256,
}
_MISP_TYPES: dict[str, tuple[IndicatorKind | None, ...]] = {
    "ip-dst": (IndicatorKind.IP,),
    "ip-src": (IndicatorKind.IP,),
    "ip-dst|port": (IndicatorKind.IP, None),
    "ip-src|port": (IndicatorKind.IP, None),
    "domain": (IndicatorKind.DOMAIN,),
    "hostname": (IndicatorKind.DOMAIN,),
    "domain|ip": (IndicatorKind.DOMAIN, IndicatorKind.IP),
    "sha256": (IndicatorKind.SHA256,),
    "filename|sha256": (None, IndicatorKind.SHA256),
}


def checked(kind: IndicatorKind, raw: str) -> str | None:
    """The value in its canonical spelling, or None when it is not one of `kind`."""
    value = raw.strip().lower()
    match kind:
        case IndicatorKind.IP:
            try:
                return str(ipaddress.ip_address(value))
            except ValueError:
                return None
        case IndicatorKind.DOMAIN:
            return value.rstrip(".") if _DOMAIN.match(value.rstrip(".")) else None
        case IndicatorKind.SHA256:
            return value if _SHA256.match(value) else None


def from_stix(objects: list[dict[str, Any]], source: str) -> list[SharedIndicator]:
    now = datetime.now(UTC)
    found: list[SharedIndicator] = []
    for body in objects:
        if body.get("type") != "indicator" or body.get("pattern_type") != "stix":
            continue
        if body.get("revoked") is True:
            continue
        valid_until = _time(body.get("valid_until"))
        if valid_until is not None and valid_until <= now:
            continue
        types = set(body.get("indicator_types") or [])
        confidence = body.get("confidence")
        confidence = confidence if isinstance(confidence, int) and 0 <= confidence <= 100 else None
        malicious = bool(types & MALICIOUS_TYPES) and (
            confidence is None or confidence >= MALICIOUS_CONFIDENCE
        )
        for kind, value in _pattern_values(str(body.get("pattern", ""))):
            found.append(
                SharedIndicator(
                    kind=kind,
                    value=value,
                    source=source,
                    verdict=ReputationVerdict.MALICIOUS
                    if malicious
                    else ReputationVerdict.SUSPICIOUS,
                    confidence=confidence if confidence is not None else 50,
                    label=str(body.get("name") or "")[:1_000],
                    ref=str(body.get("id", ""))[:200],
                    valid_until=valid_until,
                )
            )
    return found


def _pattern_values(pattern: str) -> list[tuple[IndicatorKind, str]]:
    try:
        comparisons = Pattern(pattern).inspect().comparisons
    except ParseException:
        return []
    out = []
    for object_type, tests in comparisons.items():
        for path, operator, literal in tests:
            kind = _STIX_PATHS.get((object_type, ".".join(str(p) for p in path)))
            if kind is None or operator != "=" or not str(literal).startswith("'"):
                continue
            text = str(literal)[1:-1].replace("\\'", "'").replace("\\\\", "\\")
            if (value := checked(kind, text)) is not None:
                out.append((kind, value))
    return out


def from_misp_event(event: dict[str, Any], source: str) -> list[SharedIndicator]:
    """The indicators of one MISP event (`{"Event": {...}}` as a feed serves it)."""
    body = event.get("Event", event)
    if not isinstance(body, dict):
        return []
    label = str(body.get("info") or "")[:1_000]
    attributes = list(body.get("Attribute") or [])
    for obj in body.get("Object") or []:
        if isinstance(obj, dict):
            attributes += list(obj.get("Attribute") or [])
    found = []
    for attribute in attributes:
        if not isinstance(attribute, dict) or attribute.get("deleted") in (True, "1"):
            continue
        kinds = _MISP_TYPES.get(str(attribute.get("type", "")))
        if kinds is None:
            continue
        parts = str(attribute.get("value", "")).split("|")
        if len(parts) != len(kinds):
            continue
        to_ids = attribute.get("to_ids") in (True, "1", 1)
        for kind, raw in zip(kinds, parts, strict=True):
            if kind is None or (value := checked(kind, raw)) is None:
                continue
            found.append(
                SharedIndicator(
                    kind=kind,
                    value=value,
                    source=source,
                    verdict=ReputationVerdict.MALICIOUS if to_ids else ReputationVerdict.SUSPICIOUS,
                    confidence=MISP_IDS_CONFIDENCE if to_ids else MISP_OTHER_CONFIDENCE,
                    label=label,
                    ref=str(attribute.get("uuid", ""))[:200],
                )
            )
    return found


def _time(raw: object) -> datetime | None:
    if not isinstance(raw, str):
        return None
    try:
        return datetime.fromisoformat(raw.replace("Z", "+00:00")).astimezone(UTC)
    except ValueError:
        return None
