"""Reading attacker-controlled JSON: two kinds of reader and the vocabulary every shape shares.

`Fields` is the strict reader the vendor shapes use: a value present with the wrong JSON type is a
`NormaliseError` naming its path, a required one missing is too, and text is cut to the bound of
the model field it fills (`ShortText`, `LongText`) rather than rejected. Lookups take dotted paths
and find a value whether the sender nested its objects (`{"kibana": {"alert": ...}}`) or flattened
the keys (`{"kibana.alert.uuid": ...}`), as Elasticsearch and Splunk do. The module-level readers
(`dig`, `obj`, `text`...) are the lenient ones of the OCSF reader, shared with the corpus importer:
a wrong type reads as absent there, and the caller decides what absent means.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from pydantic import ValidationError

from orchestrator.ingest.normalised import NormaliseError
from tools.models import (
    Alert,
    AlertEntities,
    AttackRef,
    FileRef,
    ProcessRef,
    RuleRef,
    Severity,
)

Json = Mapping[str, object]
SHORT, LONG = 1_024, 16_384  # tools.models ShortText, LongText
SHA256_ALGORITHM = 3  # OCSF fingerprint algorithm_id
TECHNIQUE = re.compile(r"T\d{4}(\.\d{3})?")
TACTIC_IDS = {
    "TA0043": "reconnaissance", "TA0042": "resource-development", "TA0001": "initial-access",
    "TA0002": "execution", "TA0003": "persistence", "TA0004": "privilege-escalation",
    "TA0005": "defense-evasion", "TA0006": "credential-access", "TA0007": "discovery",
    "TA0008": "lateral-movement", "TA0009": "collection", "TA0011": "command-and-control",
    "TA0010": "exfiltration", "TA0040": "impact",
}  # fmt: skip
TACTICS = frozenset(TACTIC_IDS.values())
SEVERITIES = frozenset(s.value for s in Severity)
# --- the strict reader --------------------------------------------------------------------------


def kind(value: object) -> str:
    """The JSON type of `value`, for messages (never the value itself: it is the sender's)."""
    match value:
        case bool():
            return "a boolean"
        case int() | float():
            return "a number"
        case str():
            return "a string"
        case Mapping():
            return "an object"
        case list() | tuple():
            return "an array"
        case None:
            return "null"
    return type(value).__name__


class Fields:
    """Typed reads of one JSON object; `base` prefixes every path named in an error."""

    def __init__(self, record: Json, base: str = "") -> None:
        self.record = record
        self.base = base

    def path(self, path: str) -> str:
        return f"{self.base}.{path}" if self.base and path else (self.base or path)

    def raw(self, path: str) -> object:
        """The value at `path` (None when absent); an object expected on the way and found to
        be something else is an error."""
        return _lookup(self.record, path.split("."), self.base)

    def child(self, path: str) -> Fields | None:
        value = self.raw(path)
        if value is None:
            return None
        if not isinstance(value, Mapping):
            raise NormaliseError(self.path(path), f"expected an object, got {kind(value)}")
        return Fields(value, self.path(path))

    def children(self, path: str) -> list[Fields]:
        """The objects of the array at `path` (a lone object counts as an array of one)."""
        value = self.raw(path)
        if value is None:
            return []
        if isinstance(value, Mapping):
            return [Fields(value, self.path(path))]
        if not isinstance(value, list):
            raise NormaliseError(self.path(path), f"expected an array, got {kind(value)}")
        found = []
        for i, item in enumerate(value):
            if item is None:
                continue
            if not isinstance(item, Mapping):
                raise NormaliseError(
                    f"{self.path(path)}[{i}]", f"expected an object, got {kind(item)}"
                )
            found.append(Fields(item, f"{self.path(path)}[{i}]"))
        return found

    def texts(self, path: str, limit: int = SHORT) -> list[str]:
        """Non-empty strings (or numbers) at `path`, one or an array, each cut to `limit`."""
        value = self.raw(path)
        items = value if isinstance(value, list) else [value]
        found = []
        for i, item in enumerate(items):
            where = f"{self.path(path)}[{i}]" if isinstance(value, list) else self.path(path)
            if (got := _scalar_text(item, where)) is not None:
                found.append(got[:limit])
        return found

    def text(self, path: str, limit: int = SHORT) -> str | None:
        """The first non-empty string at `path` (a multi-valued field gives its first)."""
        found = self.texts(path, limit)
        return found[0] if found else None

    def need_text(self, path: str, limit: int = SHORT) -> str:
        value = self.text(path, limit)
        if value is None:
            raise NormaliseError(self.path(path), "missing")
        return value

    def integer(self, path: str) -> int | None:
        value = self.raw(path)
        if isinstance(value, list) and value:
            value = value[0]
        if value is None or value == "":
            return None
        found = integer(value)
        if found is None:
            raise NormaliseError(self.path(path), f"expected an integer, got {kind(value)}")
        return found

    def time(self, path: str, epoch_divisor: int = 1) -> datetime | None:
        """An ISO 8601 string or a number since the epoch (seconds, or `/ epoch_divisor`)."""
        value = self.raw(path)
        if isinstance(value, list) and value:
            value = value[0]
        if value is None or value == "":
            return None
        found = timestamp(value, epoch_divisor)
        if found is None:
            raise NormaliseError(self.path(path), f"{kind(value)} that is not a timestamp")
        return found

    def need_time(self, path: str, epoch_divisor: int = 1) -> datetime:
        value = self.time(path, epoch_divisor)
        if value is None:
            raise NormaliseError(self.path(path), "missing")
        return value


def _lookup(value: object, parts: Sequence[str], base: str, done: str = "") -> object:
    """Nested or dotted: the longest key made of the next parts that the object holds wins."""
    if not parts:
        return value
    if not isinstance(value, Mapping):
        where = f"{base}.{done}" if base and done else (done or base)
        raise NormaliseError(where, f"expected an object, got {kind(value)}")
    for n in range(len(parts), 0, -1):
        key = ".".join(parts[:n])
        if key in value and value[key] is not None:
            here = f"{done}.{key}" if done else key
            return _lookup(value[key], parts[n:], base, here)
    return None


def _scalar_text(value: object, where: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise NormaliseError(where, f"expected a string, got {kind(value)}")
    found = value if isinstance(value, str) else str(value)
    return found if found.strip() else None


# --- the lenient readers (OCSF, shared with simulations.importers.ocsf) -------------------------


def dig(value: object, path: str) -> object:
    """`dig(finding, "finding_info.analytic.uid")`; None when a step is missing or not an object."""
    for part in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


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
    """An integer, an integral float, or a decimal or `0x` hex string; else None."""
    found = dig(value, path) if path else value
    if isinstance(found, bool):
        return None
    if isinstance(found, int):
        return found
    if isinstance(found, float) and found.is_integer():
        return int(found)
    if isinstance(found, str) and len(found) <= 32:  # int() of a huge digit string is slow
        try:
            return int(found, 16) if found.lower().startswith("0x") else int(found)
        except ValueError:
            return None
    return None


def timestamp(value: object, epoch_divisor: int = 1000) -> datetime | None:
    """An aware UTC time from an ISO 8601 string, or a number (or numeric string) of
    `1 / epoch_divisor` seconds since the epoch (OCSF `timestamp_t`: milliseconds)."""
    if isinstance(value, str) and len(value) <= 64:
        try:
            value = float(value)
        except ValueError:
            try:
                parsed = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
                return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC)
            except (ValueError, OverflowError):
                return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return datetime.fromtimestamp(value / epoch_divisor, UTC)
        except (OverflowError, OSError, ValueError):
            return None
    return None


def event_time(raw: Json) -> datetime | None:
    """OCSF `time`, else `time_dt` (the datetime profile)."""
    return timestamp(raw.get("time")) or timestamp(raw.get("time_dt"))


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
    """The SHA-256 among OCSF fingerprints, in lower case."""
    for fingerprint in hashes if isinstance(hashes, list) else []:
        value = text(fingerprint, "value")
        algorithm = integer(fingerprint, "algorithm_id")
        named = (text(fingerprint, "algorithm") or "").upper().replace("-", "")
        if value and (algorithm == SHA256_ALGORITHM or named == "SHA256"):
            return value.lower()
    return None


# --- Garrison's vocabulary ----------------------------------------------------------------------


def asset_id(hostname: str) -> str:
    """A host name as Garrison's asset id: its first DNS label in upper case (an IP address
    stays as it is). The recorded-incident importers name assets the same way."""
    if is_address(hostname):
        return hostname
    return hostname.split(".", 1)[0].upper()


def user_id(name: str | None, domain: str | None = None) -> str | None:
    """`domain\\name` (or a UPN, or a bare name) in lower case, as the corpus spells identities."""
    if name is None:
        return None
    if domain and "\\" not in name and "@" not in name:
        return f"{domain}\\{name}".lower()[:SHORT]
    return name.lower()[:SHORT]


def basename(path: str | None) -> str | None:
    """The last component of a Windows or POSIX path."""
    return re.split(r"[\\/]", path)[-1] if path else None


def is_address(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def tactic(value: str | None) -> str | None:
    """An ATT&CK tactic as the corpus writes it (`credential-access`) from an id (`TA0006`) or a
    name in any vendor's spelling (`Credential Access`, `CredentialAccess`,
    `Command_And_Control`); None when it names no tactic."""
    if not value:
        return None
    if value.upper() in TACTIC_IDS:
        return TACTIC_IDS[value.upper()]
    words = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", value.strip())
    name = "-".join(re.split(r"[\s_\-]+", words.lower()))
    return name if name in TACTICS else None


def technique(value: str | None) -> str | None:
    """An ATT&CK technique or sub-technique id (`T1003.001`), else None."""
    found = value.strip().upper() if value else ""
    return found if TECHNIQUE.fullmatch(found) else None


def attacks(pairs: Sequence[tuple[str | None, str | None]]) -> list[AttackRef]:
    """(technique, tactic) pairs as ATT&CK references, invalid ids dropped, duplicates once."""
    found: list[AttackRef] = []
    for raw_technique, raw_tactic in pairs:
        if (tech := technique(raw_technique)) is None:
            continue
        ref = AttackRef(technique=tech, tactic=tactic(raw_tactic))
        if ref not in found:
            found.append(ref)
    return found


def severity_word(value: str | None) -> Severity | None:
    """`High`, `informational`, `info`, `CRITICAL`... as a Severity; None for anything else."""
    word = (value or "").strip().lower()
    word = {"info": "informational", "information": "informational"}.get(word, word)
    return Severity(word) if word in SEVERITIES else None


def process(pid: int | None, name: str | None, cmd_line: str | None) -> ProcessRef | None:
    if pid is None and name is None and cmd_line is None:
        return None
    return ProcessRef(pid=pid, name=name, cmd_line=cmd_line)


def file(path: str | None, digest: str | None) -> FileRef | None:
    if path is None and digest is None:
        return None
    return FileRef(path=path, sha256=digest.lower() if digest else None)


def build_alert(
    *,
    uid: str,
    time: datetime,
    title: str,
    severity: Severity,
    product: str,
    rule: tuple[str, str, str | None],
    attacks: list[AttackRef],
    entities: AlertEntities,
    evidence: list[int] | None = None,
) -> Alert:
    """The Alert, every string already cut to its bound; a model error becomes a NormaliseError
    naming the Alert field (it should not happen: each shape checks what it reads)."""
    rule_uid, rule_name, author = rule
    try:
        return Alert(
            uid=uid[:SHORT],
            time=time,
            title=title[:SHORT],
            severity=severity,
            product=product[:SHORT],
            rule=RuleRef(uid=rule_uid[:SHORT], name=rule_name[:SHORT], author=author),
            attacks=attacks,
            entities=entities,
            evidence=evidence or [],
        )
    except ValidationError as error:
        first = error.errors()[0]
        raise NormaliseError(loc_path(first["loc"]), first["msg"]) from None


def loc_path(loc: Sequence[Any]) -> str:
    """A pydantic `loc` as a field path: `entities.process.pid`, `attacks[0].technique`."""
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


def first_of(*values: str | None) -> str | None:
    return next((v for v in values if v), None)


def url_host(url: str | None) -> str | None:
    """The host name of a URL (or of `host/path` without a scheme), else None."""
    if url is None:
        return None
    try:
        host = urlsplit(url if "//" in url else f"//{url}").hostname
    except ValueError:
        return None
    return host[:SHORT] if host else None


def cut(value: str | None, limit: int = SHORT) -> str | None:
    """`value` cut to a model bound: over-long text is kept in part, never rejected."""
    return value[:limit] if value is not None else None
