"""Elastic Security alerts: a document of `.alerts-security.alerts-*` (its `_source`, as a
search or the Webhook connector's `{{context.alerts}}` sends it). `kibana.alert.*` keys arrive
dotted or nested, ECS fields usually nested; both are read.

Where each alert field comes from:

- `uid`: `kibana.alert.uuid`. `time`: `@timestamp` (when the alert was made), else
  `kibana.alert.original_time`.
- `title`: `kibana.alert.rule.name`. `severity`: `kibana.alert.severity`, else
  `kibana.alert.rule.severity` (`low`, `medium`, `high`, `critical`).
- `product`: `Elastic Security`.
- `rule`: `kibana.alert.rule.uuid`, else `kibana.alert.rule.rule_id`; `kibana.alert.rule.name`.
- `attacks`: `kibana.alert.rule.threat[]` (else `kibana.alert.rule.parameters.threat[]`): each
  `technique[]` (its `subtechnique[].id` when it has some, else its `id`) with `tactic.name`.
- `entities`: `host.name` (else `host.hostname`); `user.name` with `user.domain`; `process.pid`,
  `process.name` (else the basename of `process.executable`), `process.command_line`;
  `source.ip`, `destination.ip`; `dns.question.name`, else `url.domain`, else
  `destination.domain`; `file.path`, `file.hash.sha256`.
- correlation: `kibana.alert.group.id` (the sequence an EQL rule's alerts belong to).
"""

from __future__ import annotations

from orchestrator.ingest.normalised import Normalised, NormaliseError, Shape
from orchestrator.ingest.shapes.values import (
    LONG,
    Fields,
    Json,
    asset_id,
    attacks,
    basename,
    build_alert,
    file,
    process,
    severity_word,
    user_id,
)
from tools.models import AlertEntities, Severity

SOURCE = "elastic-security"
RULE = "kibana.alert.rule"


def matches(record: Json) -> bool:
    f = Fields(record)
    try:
        return f.raw(f"{RULE}.name") is not None or f.raw("kibana.alert.uuid") is not None
    except NormaliseError:
        return False


def normalise_elastic(record: Json) -> Normalised:
    f = Fields(record)
    uid = f.need_text("kibana.alert.uuid")
    time = f.time("@timestamp") or f.time("kibana.alert.original_time")
    if time is None:
        raise NormaliseError("@timestamp", "missing (and no kibana.alert.original_time)")
    title = f.need_text(f"{RULE}.name")
    alert = build_alert(
        uid=uid,
        time=time,
        title=title,
        severity=_severity(f),
        product="Elastic Security",
        rule=(f.text(f"{RULE}.uuid") or f.text(f"{RULE}.rule_id") or title, title, None),
        attacks=attacks(_threats(f)),
        entities=_entities(f),
    )
    return Normalised(
        alert=alert,
        source=SOURCE,
        shape=Shape.ELASTIC,
        original=record,
        correlation=f.text("kibana.alert.group.id"),
    )


def _severity(f: Fields) -> Severity:
    for path in ("kibana.alert.severity", f"{RULE}.severity"):
        word = f.text(path)
        if word is not None:
            found = severity_word(word)
            if found is None:
                raise NormaliseError(path, "not one of low, medium, high, critical")
            return found
    raise NormaliseError("kibana.alert.severity", "missing")


def _threats(f: Fields) -> list[tuple[str | None, str | None]]:
    threats = f.children(f"{RULE}.threat") or f.children(f"{RULE}.parameters.threat")
    pairs: list[tuple[str | None, str | None]] = []
    for threat in threats:
        tactic = threat.text("tactic.name") or threat.text("tactic.id")
        for technique in threat.children("technique"):
            subs = [s.text("id") for s in technique.children("subtechnique")]
            pairs += [(s, tactic) for s in subs] if subs else [(technique.text("id"), tactic)]
    return pairs


def _entities(f: Fields) -> AlertEntities:
    host = f.text("host.name") or f.text("host.hostname")
    return AlertEntities(
        host=asset_id(host) if host else None,
        user=user_id(f.text("user.name"), f.text("user.domain")),
        process=process(
            f.integer("process.pid"),
            f.text("process.name") or basename(f.text("process.executable")),
            f.text("process.command_line", LONG),
        ),
        src_ip=f.text("source.ip"),
        dst_ip=f.text("destination.ip"),
        domain=f.text("dns.question.name") or f.text("url.domain") or f.text("destination.domain"),
        file=file(f.text("file.path"), f.text("file.hash.sha256")),
    )
