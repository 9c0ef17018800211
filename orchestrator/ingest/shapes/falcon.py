"""CrowdStrike Falcon alerts: one entity of the Alerts API v2 (`/alerts/entities/alerts/v2`).

Where each alert field comes from:

- `uid`: `composite_id` (the alert's global id). `time`: `created_timestamp`, else `timestamp`.
- `title`: `display_name`, else `name`. `severity`: `severity` 1-100 (90+ critical, 70+ high, 50+
  medium, 20+ low, below informational, the bands Falcon's own filters use), else
  `severity_name`.
- `product`: `CrowdStrike Falcon` (`product`, e.g. `epp`, in brackets when present).
- `rule`: `pattern_id` (else `name`) and `name`.
- `attacks`: `technique_id` with `tactic_id`/`tactic`, and each of `mitre_attack[]`.
- `entities`: `device.hostname`; `user_name` with `logon_domain`; the process `local_process_id`,
  `filename`, `cmdline`; the file `filepath` and `sha256`; the first `network_accesses[]`
  `local_address` and `remote_address`; the first `dns_requests[].domain_name`.
- correlation: `aggregate_id` (Falcon's grouping of related alerts).
"""

from __future__ import annotations

from orchestrator.ingest.normalised import Normalised, NormaliseError, Shape
from orchestrator.ingest.shapes.values import (
    LONG,
    Fields,
    Json,
    asset_id,
    attacks,
    build_alert,
    file,
    process,
    severity_word,
    user_id,
)
from tools.models import AlertEntities, Severity

SOURCE = "crowdstrike-falcon"
BANDS = (
    (90, Severity.CRITICAL),
    (70, Severity.HIGH),
    (50, Severity.MEDIUM),
    (20, Severity.LOW),
    (0, Severity.INFORMATIONAL),
)


def matches(record: Json) -> bool:
    return isinstance(record.get("composite_id"), str) and "cid" in record


def normalise_falcon(record: Json) -> Normalised:
    f = Fields(record)
    uid = f.need_text("composite_id")
    time = f.time("created_timestamp") or f.time("timestamp")
    if time is None:
        raise NormaliseError("created_timestamp", "missing (and no timestamp)")
    title = f.text("display_name") or f.text("name")
    if title is None:
        raise NormaliseError("name", "missing (and no display_name)")
    product = f.text("product")
    pairs = [(f.text("technique_id"), f.text("tactic_id") or f.text("tactic"))]
    pairs += [
        (m.text("technique_id"), m.text("tactic_id") or m.text("tactic"))
        for m in f.children("mitre_attack")
    ]
    network = next(iter(f.children("network_accesses")), None)
    dns = next(iter(f.children("dns_requests")), None)
    host = f.text("device.hostname")
    alert = build_alert(
        uid=uid,
        time=time,
        title=title,
        severity=_severity(f),
        product=f"CrowdStrike Falcon ({product})" if product else "CrowdStrike Falcon",
        rule=(f.text("pattern_id") or f.text("name") or title, f.text("name") or title, None),
        attacks=attacks(pairs),
        entities=AlertEntities(
            host=asset_id(host) if host else None,
            user=user_id(f.text("user_name"), f.text("logon_domain")),
            process=process(
                f.integer("local_process_id"), f.text("filename"), f.text("cmdline", LONG)
            ),
            src_ip=network.text("local_address") if network else None,
            dst_ip=network.text("remote_address") if network else None,
            domain=dns.text("domain_name") if dns else None,
            file=file(f.text("filepath"), f.text("sha256")),
        ),
    )
    return Normalised(
        alert=alert,
        source=SOURCE,
        shape=Shape.FALCON,
        original=record,
        correlation=f.text("aggregate_id"),
    )


def _severity(f: Fields) -> Severity:
    score = f.integer("severity")
    if score is not None:
        return next((s for floor, s in BANDS if score >= floor), Severity.INFORMATIONAL)
    named = severity_word(f.text("severity_name"))
    if named is None:
        raise NormaliseError("severity", "missing (and no severity_name)")
    return named
