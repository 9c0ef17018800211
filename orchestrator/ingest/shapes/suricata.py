"""Suricata EVE JSON records with `event_type` `alert` (one line of `eve.json`, as a shipper
forwards it).

Where each alert field comes from:

- `uid`: EVE has no alert id, so Garrison makes a stable one: `host` (the sensor name, when set),
  `flow_id`, `alert.gid`, `alert.signature_id` and `timestamp`, joined by `:`; the same record sent
  twice is the same alert.
- `time`: `timestamp`. `title`: `alert.signature`.
- `severity`: `alert.severity` 1 high, 2 medium, 3 low, 4 and above informational (Suricata's
  priorities, 1 the most urgent).
- `product`: `Suricata`. `rule`: `alert.signature_id`, named by `alert.signature`.
- `attacks`: `alert.metadata.mitre_technique_id[]`, with `mitre_tactic_name[]` (else
  `mitre_tactic_id[]`) paired by position, or the one tactic for all (ET Open's metadata keys).
- `entities`: `src_ip`, `dest_ip`; the domain from `http.hostname`, else `tls.sni`, else
  `dns.query[0].rrname` (or `dns.rrname`), unless it is an address. No host: EVE's `host` is
  the sensor, not the machine the alert is about.
- correlation: none (`flow_id` ties a flow's records together, not an incident's).
"""

from __future__ import annotations

from orchestrator.ingest.normalised import Normalised, NormaliseError, Shape
from orchestrator.ingest.shapes.values import (
    Fields,
    Json,
    attacks,
    build_alert,
    is_address,
)
from tools.models import AlertEntities, Severity

SOURCE = "suricata"
SEVERITIES = {1: Severity.HIGH, 2: Severity.MEDIUM, 3: Severity.LOW}


def matches(record: Json) -> bool:
    alert = record.get("alert")
    return (
        record.get("event_type") == "alert" and isinstance(alert, dict) and "signature_id" in alert
    )


def normalise_suricata(record: Json) -> Normalised:
    f = Fields(record)
    time = f.need_time("timestamp")
    sid = f.integer("alert.signature_id")
    if sid is None:
        raise NormaliseError("alert.signature_id", "missing")
    title = f.need_text("alert.signature")
    level = f.integer("alert.severity")
    if level is None:
        raise NormaliseError("alert.severity", "missing")
    parts = [f.text("host"), f.text("flow_id"), str(f.integer("alert.gid") or 1), str(sid)]
    uid = ":".join([*(p or "-" for p in parts), time.isoformat()])
    meta = f.child("alert.metadata")
    techniques = meta.texts("mitre_technique_id") if meta else []
    tactics = (meta.texts("mitre_tactic_name") or meta.texts("mitre_tactic_id")) if meta else []
    if len(tactics) == len(techniques):
        pairs: list[tuple[str | None, str | None]] = list(zip(techniques, tactics, strict=True))
    else:
        pairs = [(t, tactics[0] if len(tactics) == 1 else None) for t in techniques]
    dns = next(iter(f.children("dns.query")), None)
    domain = f.text("http.hostname") or f.text("tls.sni")
    domain = domain or (dns.text("rrname") if dns else None) or f.text("dns.rrname")
    domain = None if domain and is_address(domain) else domain  # a Host header may be an address
    alert = build_alert(
        uid=uid,
        time=time,
        title=title,
        severity=SEVERITIES.get(level, Severity.HIGH if level < 1 else Severity.INFORMATIONAL),
        product="Suricata",
        rule=(str(sid), title, None),
        attacks=attacks(pairs),
        entities=AlertEntities(src_ip=f.text("src_ip"), dst_ip=f.text("dest_ip"), domain=domain),
    )
    return Normalised(alert=alert, source=SOURCE, shape=Shape.SURICATA, original=record)
