"""OCSF 1.x Detection Findings (class 2004) and Security Findings (2001), both ways.

`read_finding` turns a finding into an alert; the live API (`normalise`) and the corpus importer
(`simulations.importers.ocsf.findings`) share it. `alert_to_ocsf` turns a Garrison alert into a
Detection Finding; `scripts/export_ocsf.py` and `garrison rehearse` use it, and reading its output
back gives the same alert (a test holds this over the whole corpus). Where each alert field comes
from:

- `uid`: `finding_info.uid` (2001: `finding.uid`).
- `time`: `time` (milliseconds since the epoch), else `time_dt`.
- `title`: `finding_info.title`, else `finding_info.analytic.name`, else `message`.
- `severity`: `severity_id` 1-6 (6, Fatal, counts as critical), else a `severity` caption; 0
  (Unknown) and 99 (Other) without a caption are refused.
- `product`: `metadata.product.name`, else `metadata.product.vendor_name`.
- `rule`: `finding_info.analytic` `uid` and `name` (2001: the top-level `analytic`); the author
  from `unmapped.rule_author` (OCSF has no field for it; Sigma's licence wants it shown), else
  the product's `vendor_name`.
- `attacks`: `finding_info.attacks[]` (or the top-level `attacks`): `sub_technique.uid`, else
  `technique.uid`; `tactic.name` (or `tactics[].name`) written like `credential-access`.
- `entities.host`: `device.hostname`, else `device.name`, as an asset id (first label, upper).
- `entities.user`: among `actor.user`, `evidences[].actor.user`, `evidences[].user`,
  `evidences[].process.user`, `actor.process.user`, the first person, else the first account.
- `entities.process`: `evidences[].process`, else `actor.process`: `pid`, `name` (else the
  basename of `file.path`), `cmd_line`.
- `entities.src_ip`, `dst_ip`: `evidences[].src_endpoint.ip`, `evidences[].dst_endpoint.ip`.
- `entities.domain`: `evidences[].query.hostname`, else `evidences[].dst_endpoint.hostname`.
- `entities.file`: `evidences[].file`: `path` and the SHA-256 of `hashes`.
- `evidence`: `unmapped.evidence` (rows of a recorded incident's telemetry, written by
  `alert_to_ocsf` so a corpus alert survives the trip; the importer recomputes them).
- correlation: `metadata.correlation_uid`.

Required fields missing or unreadable are errors naming the OCSF path; optional objects of an
unexpected type read as absent (the OCSF reader's contract). Over-long text is cut to the model's
bounds.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from orchestrator.ingest.grouping import is_system_account
from orchestrator.ingest.normalised import Normalised, NormaliseError, Shape
from orchestrator.ingest.shapes.values import (
    LONG,
    Json,
    account,
    basename,
    cut,
    event_time,
    host_of,
    integer,
    kind,
    loc_path,
    obj,
    objects,
    sha256,
    text,
)
from tools.models import (
    Alert,
    AlertEntities,
    AssetKind,
    AttackRef,
    Environment,
    FileRef,
    ProcessRef,
    RuleRef,
    Severity,
)

FINDING_CLASSES = {2004: "Detection Finding", 2001: "Security Finding"}
SEVERITY_IDS = {
    1: Severity.INFORMATIONAL,
    2: Severity.LOW,
    3: Severity.MEDIUM,
    4: Severity.HIGH,
    5: Severity.CRITICAL,
    6: Severity.CRITICAL,
}
VERSION = "1.1.0"
DEVICE_TYPES = {
    AssetKind.WORKSTATION: (2, "Desktop"),
    AssetKind.SERVER: (1, "Server"),
    AssetKind.DOMAIN_CONTROLLER: (1, "Server"),
}
Obj = dict[str, Any]


@dataclass(frozen=True)
class OcsfFinding:
    """One finding read as an alert, with what the alert model has no room for."""

    alert: Alert
    related_events: tuple[str, ...]  # finding_info.related_events[].uid
    correlation: str | None  # metadata.correlation_uid


def matches(record: Json) -> bool:
    """A finding class with its finding object: `class_uid` 2004/2001 and `finding_info` (or
    the 1.0 `finding`)."""
    info = record.get("finding_info") or record.get("finding")
    return _finding_class(record.get("class_uid")) and isinstance(info, Mapping)


def normalise_ocsf(record: Json) -> Normalised:
    finding, errors = read_finding(record)
    if finding is None:
        raise errors[0]
    product = finding.alert.product
    return Normalised(
        alert=finding.alert,
        source=f"ocsf:{product}"[:1024],
        shape=Shape.OCSF,
        original=record,
        correlation=finding.correlation,
    )


def read_finding(raw: Json) -> tuple[OcsfFinding | None, list[NormaliseError]]:
    """The finding as an alert, or None and every problem that prevents it."""
    class_uid = raw.get("class_uid")
    if not _finding_class(class_uid):
        known = ", ".join(f"{uid} ({name})" for uid, name in FINDING_CLASSES.items())
        got = "missing" if class_uid is None else _brief(class_uid)
        return None, [NormaliseError("class_uid", f"{got}; a finding line must be {known}")]
    info = obj(raw, "finding_info") or obj(raw, "finding")
    info_name = "finding_info" if obj(raw, "finding_info") else "finding"
    errors: list[NormaliseError] = []
    time = event_time(raw)
    if time is None:
        errors.append(NormaliseError("time", _time_problem(raw)))
    uid = text(info, "uid")
    if uid is None:
        errors.append(NormaliseError(f"{info_name}.uid", "missing"))
    title = text(info, "title") or text(info, "analytic.name") or text(raw, "message")
    if title is None:
        errors.append(
            NormaliseError(f"{info_name}.title", "missing (and no analytic.name or message)")
        )
    severity = _severity(raw)
    if severity is None:
        errors.append(
            NormaliseError("severity_id", f"{_brief(raw.get('severity_id'))} is not a severity 1-6")
        )
    product = text(raw, "metadata.product.name") or text(raw, "metadata.product.vendor_name")
    if product is None:
        errors.append(NormaliseError("metadata.product.name", "missing"))
    evidence = _evidence(raw, errors)
    if errors or time is None or uid is None or title is None or severity is None or not product:
        return None, errors
    analytic = obj(info, "analytic") or obj(raw, "analytic")
    author = text(raw, "unmapped.rule_author") or text(raw, "metadata.product.vendor_name")
    try:
        alert = Alert(
            uid=uid[:1024],
            time=time,
            title=title[:1024],
            severity=severity,
            product=product[:1024],
            rule=RuleRef(
                uid=(text(analytic, "uid") or text(analytic, "name") or title)[:1024],
                name=(text(analytic, "name") or title)[:1024],
                author=cut(author),
            ),
            attacks=ocsf_attacks(objects(info, "attacks") or objects(raw, "attacks")),
            entities=entities(raw),
            evidence=evidence,
        )
    except ValidationError as error:
        return None, [NormaliseError(loc_path(d["loc"]), d["msg"]) for d in error.errors()]
    related = tuple(u for e in objects(info, "related_events") if (u := text(e, "uid")))
    correlation = cut(text(raw, "metadata.correlation_uid"))
    return OcsfFinding(alert=alert, related_events=related, correlation=correlation), []


def _finding_class(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value in FINDING_CLASSES


def ocsf_attacks(items: list[Json]) -> list[AttackRef]:
    found: list[AttackRef] = []
    for attack in items:
        technique = text(attack, "sub_technique.uid") or text(attack, "technique.uid")
        if technique is None:
            continue  # a tactic alone names no technique
        tactics = [obj(attack, "tactic"), *objects(attack, "tactics")]
        name = next((n for t in tactics if (n := text(t, "name"))), None)
        tactic = "-".join(name.lower().split())[:1024] if name else None
        ref = AttackRef(technique=technique.upper()[:1024], tactic=tactic)
        if ref not in found:
            found.append(ref)
    return found


def entities(raw: Json) -> AlertEntities:
    """What an analyst reads off a finding: host, user, process, addresses, domain, file."""
    evidences = objects(raw, "evidences")
    host, _ = host_of(obj(raw, "device"))
    if host is None:
        host = next((h for e in evidences if (h := host_of(obj(e, "device"))[0])), None)
    process = next((p for e in evidences if (p := obj(e, "process"))), obj(raw, "actor.process"))
    file = next((f for e in evidences if (f := obj(e, "file"))), {})
    domain = _first(evidences, "query.hostname") or _first(evidences, "dst_endpoint.hostname")
    path, digest = text(file, "path"), sha256(file.get("hashes"))
    image = text(process, "file.path")
    return AlertEntities(
        host=cut(host),
        user=cut(_user(raw, evidences)),
        process=ProcessRef(
            pid=integer(process, "pid"),
            name=cut(text(process, "name") or basename(image)),
            cmd_line=cut(text(process, "cmd_line"), LONG),
        )
        if process
        else None,
        src_ip=cut(_first(evidences, "src_endpoint.ip")),
        dst_ip=cut(_first(evidences, "dst_endpoint.ip")),
        domain=cut(domain),
        file=FileRef(path=cut(path), sha256=cut(digest)) if path or digest else None,
    )


def _user(raw: Json, evidences: list[Json]) -> str | None:
    """The first person among the finding's accounts, else the first account, in lower case."""
    users = [obj(raw, "actor.user")]
    for evidence in evidences:
        users += [obj(evidence, p) for p in ("actor.user", "user", "process.user")]
    users.append(obj(raw, "actor.process.user"))
    names = [n.lower() for u in users if (n := account(u))]
    people = [n for n in names if not is_system_account(n)]
    return (people or names or [None])[0]


def _first(evidences: list[Json], path: str) -> str | None:
    return next((v for e in evidences if (v := text(e, path))), None)


def _severity(raw: Json) -> Severity | None:
    severity_id = integer(raw, "severity_id")
    if severity_id in SEVERITY_IDS:
        return SEVERITY_IDS[severity_id]
    caption = (text(raw, "severity") or "").lower()
    return Severity(caption) if caption in {s.value for s in Severity} else None


def _evidence(raw: Json, errors: list[NormaliseError]) -> list[int]:
    rows = obj(raw, "unmapped").get("evidence")
    if rows is None:
        return []
    if not isinstance(rows, list) or not all(
        isinstance(r, int) and not isinstance(r, bool) and r >= 0 for r in rows
    ):
        errors.append(NormaliseError("unmapped.evidence", "expected an array of row numbers"))
        return []
    return list(rows)


def _time_problem(raw: Json) -> str:
    if "time" not in raw and "time_dt" not in raw:
        return "missing (OCSF timestamp_t: milliseconds since the epoch)"
    return f"{_brief(raw.get('time', raw.get('time_dt')))} is not a timestamp (ms since the epoch)"


def _brief(value: object) -> str:
    """A short rendering of a sender's value for a message: scalars quoted and cut, else the
    JSON type."""
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        shown = repr(value)
        return shown if len(shown) <= 40 else f"{shown[:37]}..."
    return kind(value)


# --- the other way: an alert as a Detection Finding ---------------------------------------------


def alert_to_ocsf(
    alert: Alert,
    environment: Environment | None = None,
    *,
    event_uid_prefix: str | None = None,
    correlation_uid: str | None = None,
) -> Obj:
    """The alert as an OCSF 1.1 Detection Finding (JSON-compatible), which `read_finding` reads
    back as the same alert. `environment` fills the device and marks privileged users;
    `event_uid_prefix` names the evidence events `<prefix>:<row>` in `related_events` (the
    exporter's events carry those uids); `correlation_uid` goes to `metadata.correlation_uid`,
    so the alerts of one recorded incident arrive as one incident."""
    environment = environment or Environment()
    entities = alert.entities
    process = entities.process
    file = entities.file
    evidence = {
        "process": process
        and {"pid": process.pid, "name": process.name, "cmd_line": process.cmd_line},
        "src_endpoint": entities.src_ip and {"ip": entities.src_ip},
        "dst_endpoint": entities.dst_ip and {"ip": entities.dst_ip},
        "query": entities.domain and {"hostname": entities.domain},
        "file": file and {"path": file.path, "hashes": file.sha256 and [_sha256(file.sha256)]},
    }
    related = (
        [{"uid": f"{event_uid_prefix}:{row}"} for row in alert.evidence]
        if event_uid_prefix is not None
        else []
    )
    body = {
        "class_uid": 2004,
        "class_name": "Detection Finding",
        "category_uid": 2,
        "activity_id": 1,
        "type_uid": 200401,
        "time": epoch_ms(alert.time),
        "severity_id": EXPORT_SEVERITY_IDS[alert.severity],
        "severity": alert.severity.value.capitalize(),
        "status_id": 1,
        "metadata": {
            "version": VERSION,
            "uid": alert.uid,
            "product": {"name": alert.product},
            "correlation_uid": correlation_uid,
        },
        "finding_info": {
            "uid": alert.uid,
            "title": alert.title,
            "analytic": {
                "uid": alert.rule.uid,
                "name": alert.rule.name,
                "type_id": 1,
                "type": "Rule",
            },
            "attacks": [_attack(a.technique, a.tactic) for a in alert.attacks],
            "related_events": related,
        },
        "device": entities.host and device(environment, entities.host, full=True),
        "actor": {"user": ocsf_user(environment, entities.user)},
        "evidences": [evidence],
        "unmapped": {"rule_author": alert.rule.author, "evidence": alert.evidence},
    }
    return compact(body)


EXPORT_SEVERITY_IDS = {
    Severity.INFORMATIONAL: 1,
    Severity.LOW: 2,
    Severity.MEDIUM: 3,
    Severity.HIGH: 4,
    Severity.CRITICAL: 5,
}


def device(environment: Environment, host: str, full: bool) -> Obj | None:
    """An asset as an OCSF device: its recorded host name and first address; `full` adds the
    name, type, OS and owner (a finding's device; an event's carries only the first two)."""
    if not host:
        return None
    asset = next((a for a in environment.assets if a.id == host), None)
    if asset is None:
        return {"hostname": host}
    found: Obj = {"hostname": asset.hostname or host, "ip": asset.ips[0] if asset.ips else None}
    if full:
        type_id, caption = DEVICE_TYPES.get(asset.kind, (99, "Other"))
        found |= {
            "name": asset.id,
            "type_id": type_id,
            "type": caption,
            "os": {"name": "Windows", "type": "Windows", "type_id": 100}
            if asset.os == "windows"
            else None,
            "owner": ocsf_user(environment, asset.owner),
        }
    return found


def ocsf_user(environment: Environment, name: str | None) -> Obj | None:
    """An identity as an OCSF user; privileged as the environment says."""
    user = split_account(name)
    identity = next((i for i in environment.identities if i.id == name), None)
    if user is not None and identity is not None and identity.privileged:
        user |= {"type_id": 2, "type": "Admin", "is_privileged": True}
    return user


def split_account(name: object) -> Obj | None:
    """`DOMAIN\\user` as an OCSF user `{name, domain}` (a bare name keeps no domain)."""
    value = _clean(name)
    if value is None:
        return None
    domain, sep, user = value.rpartition("\\")
    return {"name": user, "domain": domain} if sep else {"name": value}


def epoch_ms(moment: datetime | str) -> int:
    """OCSF `timestamp_t`: milliseconds since the epoch."""
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return round(moment.timestamp() * 1000)


def compact(value: Any) -> Any:
    """Drop nulls and empty objects and arrays, recursively: OCSF leaves absent what is unknown."""
    if isinstance(value, Mapping):
        items = {k: compact(v) for k, v in value.items()}
        return {k: v for k, v in items.items() if v not in (None, {}, [])}
    if isinstance(value, list):
        return [c for c in (compact(v) for v in value) if c not in (None, {}, [])]
    return value


def _sha256(value: str) -> Obj:
    return {"algorithm_id": 3, "algorithm": "SHA-256", "value": value}


def _attack(technique: str, tactic: str | None) -> Obj:
    parent, dot, _ = technique.partition(".")
    return {
        "technique": {"uid": parent},
        "sub_technique": {"uid": technique} if dot else None,
        "tactic": {"name": " ".join(w.capitalize() for w in tactic.split("-"))} if tactic else None,
        "version": "13.1",
    }


def _clean(value: object) -> str | None:
    if value is None or isinstance(value, bool):
        return None
    found = str(value).strip()
    return None if found in ("", "-") else found
