"""Sigma rule matches as Garrison's corpus importer reads and writes them: one line of a
recording's `sigma_alerts.jsonl` (`simulations.importers.otrf.alerts.read_reference_hits`), one
rule's hits in one source: `rule_id`, `rule_title`, `level`, `tags`, `rule_author`, `source`,
`event_rows`, `hits`, `hosts`, `first_seen`, `last_seen` (and `rule_path`, `rule_url`,
`rule_license`, `status`, which Garrison keeps in the original only).

Where each alert field comes from:

- `uid`: `rule_id`, `source` and the first of `event_rows` (else `first_seen`), joined by `:`.
- `time`: `first_seen`. `title`: `rule_title`. `severity`: `level`.
- `product`: `sigma` (as the corpus writes it). `rule`: `rule_id`, `rule_title`, `rule_author`
  (the Detection Rule License wants the author shown).
- `attacks`: the `attack.tNNNN[.NNN]` tags, with the one `attack.<tactic>` tag, as the importer
  reads them.
- `entities.host`: the first of `hosts`, as an asset id. A match names no process, user or file.
- correlation: none.
"""

from __future__ import annotations

from orchestrator.ingest.normalised import Normalised, NormaliseError, Shape
from orchestrator.ingest.shapes.values import (
    Fields,
    Json,
    asset_id,
    attacks,
    build_alert,
    cut,
    severity_word,
    tactic,
)
from tools.models import AlertEntities

SOURCE = "sigma"


def matches(record: Json) -> bool:
    return all(k in record for k in ("rule_id", "rule_title", "level")) and (
        "event_rows" in record or "hits" in record
    )


def normalise_sigma(record: Json) -> Normalised:
    f = Fields(record)
    rule_id = f.need_text("rule_id")
    time = f.need_time("first_seen")
    title = f.need_text("rule_title")
    severity = severity_word(f.text("level"))
    if severity is None:
        raise NormaliseError("level", "not one of informational, low, medium, high, critical")
    rows = f.raw("event_rows")
    if rows is not None and not isinstance(rows, list):
        raise NormaliseError("event_rows", "expected an array")
    first_row = f.integer("event_rows") if rows else None
    uid = ":".join(
        [
            rule_id,
            f.text("source") or "-",
            str(first_row) if first_row is not None else time.isoformat(),
        ]
    )
    tags = [t.lower() for t in f.texts("tags")]
    found_tactic = next((t[7:] for t in tags if t.startswith("attack.") and tactic(t[7:])), None)
    hosts = f.texts("hosts")
    alert = build_alert(
        uid=uid,
        time=time,
        title=title,
        severity=severity,
        product="sigma",
        rule=(rule_id, title, cut(f.text("rule_author"))),
        attacks=attacks([(t[7:], found_tactic) for t in tags if t.startswith("attack.t")]),
        entities=AlertEntities(host=asset_id(hosts[0]) if hosts else None),
    )
    return Normalised(alert=alert, source=SOURCE, shape=Shape.SIGMA, original=record)
