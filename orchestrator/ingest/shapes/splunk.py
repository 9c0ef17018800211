"""Splunk: the Webhook alert action's payload (`result`, `sid`, `search_name`, `app`, `owner`,
`results_link`; `result` is the first row of the triggering search) and Splunk Enterprise
Security notable events (a row with `rule_name` and `event_id`, whether it comes inside a webhook
`result` or alone). Field names inside a row are the CIM's.

Where each alert field comes from (row fields are read in `result` for a webhook):

- `uid`: the notable's `event_id`, else the webhook's `sid` (one search run, one alert).
- `time`: `_time` (seconds since the epoch, or ISO 8601), else `orig_time`.
- `title`: `rule_title`, else `rule_name`, else `search_name` (the row's, then the webhook's).
- `severity`: `urgency`, else `severity` (`informational`...`critical`); a plain saved search
  says neither and is read as `medium` (add `| eval urgency="high"` to the search to say more).
- `product`: `Splunk ES` for a notable, else `Splunk` (`app` in brackets when present).
- `rule`: `rule_id`, else the search name; named by `rule_name`, else the search name.
- `attacks`: `annotations.mitre_attack` (technique ids), with `annotations.mitre_attack.
  mitre_tactic` when it names exactly one tactic.
- `entities`: `dest_nt_host`, else `dest`, else `orig_host` (the host; an address goes to
  `dst_ip` instead); `user`, else `src_user`; `process_id`, `process_name`, `process` (the CIM's
  command line); `src` or `src_ip` when an address, `dest_ip`; `query`, else `url_domain`;
  `file_path`, else `file_name`, and `file_hash` when it is a SHA-256.
- correlation: none.
"""

from __future__ import annotations

import re

from orchestrator.ingest.normalised import Normalised, NormaliseError, Shape
from orchestrator.ingest.shapes.values import (
    LONG,
    Fields,
    Json,
    asset_id,
    attacks,
    build_alert,
    file,
    is_address,
    process,
    severity_word,
    user_id,
)
from tools.models import AlertEntities, Severity

SOURCE = "splunk"
SHA256 = re.compile(r"[0-9a-fA-F]{64}")


def matches(record: Json) -> bool:
    if isinstance(record.get("result"), dict) and ("sid" in record or "search_name" in record):
        return True
    if "rule_name" not in record:
        return False
    return "event_id" in record or any(isinstance(k, str) and k.startswith("orig_") for k in record)


def normalise_splunk(record: Json) -> Normalised:
    top = Fields(record)
    webhook = isinstance(record.get("result"), dict)
    row = top.child("result") if webhook else top
    assert row is not None  # a webhook's result is an object: checked above
    notable = row.text("rule_name") is not None and row.text("event_id") is not None
    uid = row.text("event_id") or top.text("sid")
    if uid is None:
        raise NormaliseError("sid" if webhook else "event_id", "missing")
    time = row.time("_time") or row.time("orig_time")
    if time is None:
        raise NormaliseError(row.path("_time"), "missing (and no orig_time)")
    search = row.text("search_name") or top.text("search_name")
    title = row.text("rule_title") or row.text("rule_name") or search
    if title is None:
        raise NormaliseError(row.path("rule_name") if notable else "search_name", "missing")
    app = top.text("app")
    product = "Splunk ES" if notable else (f"Splunk ({app})" if app else "Splunk")
    tactics = row.texts("annotations.mitre_attack.mitre_tactic")
    tactic = tactics[0] if len(tactics) == 1 else None
    alert = build_alert(
        uid=uid,
        time=time,
        title=title,
        severity=_severity(row),
        product=product,
        rule=(
            row.text("rule_id") or search or title,
            row.text("rule_name") or search or title,
            None,
        ),
        attacks=attacks([(t, tactic) for t in row.texts("annotations.mitre_attack")]),
        entities=_entities(row),
    )
    return Normalised(alert=alert, source=SOURCE, shape=Shape.SPLUNK, original=record)


def _severity(row: Fields) -> Severity:
    for name in ("urgency", "severity"):
        word = row.text(name)
        if word is None:
            continue
        found = severity_word(word)
        if found is None and word.lower() != "unknown":
            raise NormaliseError(
                row.path(name), "not one of informational, low, medium, high, critical"
            )
        if found is not None:
            return found
    return Severity.MEDIUM


def _entities(row: Fields) -> AlertEntities:
    dest = row.text("dest_nt_host") or row.text("dest") or row.text("orig_host")
    dest_is_ip = dest is not None and is_address(dest)
    src = row.text("src_ip") or row.text("src")
    digest = row.text("file_hash")
    return AlertEntities(
        host=asset_id(dest) if dest and not dest_is_ip else None,
        user=user_id(row.text("user") or row.text("src_user")),
        process=process(
            row.integer("process_id"), row.text("process_name"), row.text("process", LONG)
        ),
        src_ip=src if src and is_address(src) else None,
        dst_ip=row.text("dest_ip") or (dest if dest_is_ip else None),
        domain=row.text("query") or row.text("url_domain"),
        file=file(
            row.text("file_path") or row.text("file_name"),
            digest if digest and SHA256.fullmatch(digest) else None,
        ),
    )
