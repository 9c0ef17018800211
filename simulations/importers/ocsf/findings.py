"""OCSF Detection Findings (class 2004) and Security Findings (2001) read as alerts.

Each line of the findings file is one finding. Where each alert field comes from:

- `uid`: `finding_info.uid` (2001: `finding.uid`).
- `time`: `time` (milliseconds since the epoch), else `time_dt`.
- `title`: `finding_info.title`, else `finding_info.analytic.name`, else `message`.
- `severity`: `severity_id` 1-6 (6, Fatal, counts as critical), else a `severity` caption.
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
- `evidence`: rows of the kept events whose `metadata.uid` is a `finding_info.related_events[].uid`.

A later line with the uid of an earlier finding and `activity_id` 2 (Update) or 3 (Close) is the
same finding's lifecycle and is skipped; any other repeated uid is an error.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from pydantic import ValidationError

from simulations.importers.ocsf.fields import (
    Json,
    account,
    event_time,
    host_of,
    integer,
    obj,
    objects,
    sha256,
    text,
)
from simulations.importers.ocsf.reader import json_lines, note, where
from simulations.importers.otrf.entities import basename, is_system_account
from simulations.loader import Problem, format_loc
from tools.models import Alert, AlertEntities, AttackRef, FileRef, ProcessRef, RuleRef, Severity

FINDING_CLASSES = {2004: "Detection Finding", 2001: "Security Finding"}
SEVERITY_IDS = {
    1: Severity.INFORMATIONAL,
    2: Severity.LOW,
    3: Severity.MEDIUM,
    4: Severity.HIGH,
    5: Severity.CRITICAL,
    6: Severity.CRITICAL,
}
LIFECYCLE = {2, 3}  # finding activity_id Update, Close


@dataclass(frozen=True)
class Finding:
    """One finding as an alert (its `evidence` is filled once the telemetry is cut)."""

    line: int
    alert: Alert
    related_events: tuple[str, ...]
    product: str  # "name (vendor) version", for the attribution

    @property
    def time(self) -> datetime:
        return self.alert.time

    @property
    def people(self) -> list[str]:
        """The users that can link this finding to others: not SYSTEM, not machine accounts."""
        user = self.alert.entities.user
        return [user] if user and not is_system_account(user) else []


def read_findings(path: Path, problems: list[Problem]) -> Iterator[tuple[Json, Finding]]:
    """Each finding with its raw object, streaming; defects are added to `problems`."""
    first_line: dict[str, int] = {}
    for number, raw in json_lines(path, problems):
        finding, errors = parse_finding(raw, number)
        for field_path, message in errors:
            note(problems, path, Problem(where(path, number), field_path, message))
        if finding is None:
            continue
        uid = finding.alert.uid
        if uid in first_line:
            if integer(raw, "activity_id") not in LIFECYCLE:
                note(
                    problems,
                    path,
                    Problem(
                        where(path, number),
                        "finding_info.uid",
                        f"{uid!r} repeats the finding of line {first_line[uid]}",
                    ),
                )
            continue
        first_line[uid] = number
        yield raw, finding


def parse_finding(raw: Json, line: int) -> tuple[Finding | None, list[tuple[str, str]]]:
    """The finding of one line, or None and the (field, problem) pairs that prevent it."""
    class_uid = raw.get("class_uid")
    if class_uid not in FINDING_CLASSES:
        known = ", ".join(f"{uid} ({name})" for uid, name in FINDING_CLASSES.items())
        got = "missing" if class_uid is None else repr(class_uid)
        return None, [("class_uid", f"{got}; a finding line must be {known}")]
    info = obj(raw, "finding_info") or obj(raw, "finding")
    info_name = "finding_info" if obj(raw, "finding_info") else "finding"
    errors: list[tuple[str, str]] = []
    time = event_time(raw)
    if time is None:
        errors.append(("time", _time_problem(raw)))
    uid = text(info, "uid")
    if uid is None:
        errors.append((f"{info_name}.uid", "missing"))
    title = text(info, "title") or text(info, "analytic.name") or text(raw, "message")
    if title is None:
        errors.append((f"{info_name}.title", "missing (and no analytic.name or message)"))
    severity = _severity(raw)
    if severity is None:
        errors.append(("severity_id", f"{raw.get('severity_id')!r} is not a severity 1-6"))
    product = text(raw, "metadata.product.name") or text(raw, "metadata.product.vendor_name")
    if product is None:
        errors.append(("metadata.product.name", "missing"))
    if errors or time is None or uid is None or title is None or severity is None or not product:
        return None, errors
    analytic = obj(info, "analytic") or obj(raw, "analytic")
    author = text(raw, "unmapped.rule_author") or text(raw, "metadata.product.vendor_name")
    try:
        alert = Alert(
            uid=uid,
            time=time,
            title=title,
            severity=severity,
            product=product,
            rule=RuleRef(
                uid=text(analytic, "uid") or text(analytic, "name") or title,
                name=text(analytic, "name") or title,
                author=author,
            ),
            attacks=attacks(objects(info, "attacks") or objects(raw, "attacks")),
            entities=entities(raw),
        )
    except ValidationError as error:
        return None, [(format_loc(d["loc"]), d["msg"]) for d in error.errors()]
    related = tuple(u for e in objects(info, "related_events") if (u := text(e, "uid")))
    return Finding(line=line, alert=alert, related_events=related, product=_product(raw)), []


def attacks(items: list[Json]) -> list[AttackRef]:
    found: list[AttackRef] = []
    for attack in items:
        technique = text(attack, "sub_technique.uid") or text(attack, "technique.uid")
        if technique is None:
            continue  # a tactic alone names no technique
        tactics = [obj(attack, "tactic"), *objects(attack, "tactics")]
        name = next((n for t in tactics if (n := text(t, "name"))), None)
        tactic = "-".join(name.lower().split()) if name else None
        ref = AttackRef(technique=technique.upper(), tactic=tactic)
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
        host=host,
        user=_user(raw, evidences),
        process=ProcessRef(
            pid=integer(process, "pid"),
            name=text(process, "name") or basename(image),
            cmd_line=text(process, "cmd_line"),
        )
        if process
        else None,
        src_ip=_first(evidences, "src_endpoint.ip"),
        dst_ip=_first(evidences, "dst_endpoint.ip"),
        domain=domain,
        file=FileRef(path=path, sha256=digest) if path or digest else None,
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


def _time_problem(raw: Json) -> str:
    if "time" not in raw and "time_dt" not in raw:
        return "missing (OCSF timestamp_t: milliseconds since the epoch)"
    return f"{raw.get('time', raw.get('time_dt'))!r} is not a timestamp (ms since the epoch)"


def _product(raw: Json) -> str:
    product = obj(raw, "metadata.product")
    name = text(product, "name") or text(product, "vendor_name") or "unknown product"
    vendor = text(product, "vendor_name")
    version = text(product, "version")
    label = f"{name} ({vendor})" if vendor and vendor != name else name
    return f"{label} {version}" if version else label
