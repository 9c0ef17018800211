"""Write the synthetic benign incidents of `benign_scenarios.py` into a corpus folder.

    .venv/bin/python scripts/write_benign_incidents.py \
        ../shared/datasets/sigma-rules/sigma-rules.tar.gz simulations/incidents

The alerts are not written by hand: the scenario's events go through the importer's own path (the
SigmaHQ rules compiled by pySigma and run over the events, one alert per rule, host and acting
process, the rule's author kept), so each alert is what those rules fire on. A scenario that no rule
fires on is an error. Truth: benign, `benign_activity`, no action (the spec's rule 5).
"""

from __future__ import annotations

import json
import lzma
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from benign_scenarios import NETWORKS, SCENARIOS, Scenario

from simulations.importers.otrf.alerts import alert_groups, build_alert
from simulations.importers.otrf.events import stream
from simulations.importers.otrf.telemetry import telemetry_gzip
from simulations.importers.sigma.engine import evaluate
from simulations.importers.sigma.rules import cache_dir_from, load_rules
from simulations.loader import INCIDENT_FILE
from simulations.spec import RecordedIncident

REF = "scripts/benign_scenarios.py"
AUTHORS = "Written by the Garrison maintainers: synthetic events, not from OTRF or any real estate."


BENIGN_TRUTH: dict[str, object] = {
    "verdict": "benign",
    "category": "benign_activity",
    "techniques": [],
    "compromised": {"assets": [], "identities": [], "indicators": {}},
    "expected_actions": [],
    "acceptable_actions": [],
}


def write(
    scenario: Scenario,
    rules_path: Path,
    out: Path,
    *,
    truth: dict[str, object] | None = None,
    analyst: dict[str, object] | None = None,
    dataset: str = "Garrison synthetic benign incidents",
    ref: str = REF,
) -> RecordedIncident:
    """Write one incident; benign truth and the oracle analyst unless `truth`/`analyst` say."""
    rules = load_rules(rules_path, cache_dir_from(os.environ)).rules.rules
    with tempfile.TemporaryDirectory() as tmp:
        recording = Path(tmp) / scenario.id
        (recording / "host").mkdir(parents=True)
        name = f"{scenario.id}.json.xz"
        lines = "".join(json.dumps(e, ensure_ascii=False) + "\n" for e in scenario.events)
        (recording / "host" / name).write_bytes(lzma.compress(lines.encode()))
        events = {(name, line): event for line, event in stream(recording / "host" / name)}
        hits = evaluate(recording, rules).hits
    if not hits:
        raise SystemExit(f"{scenario.id}: no Sigma rule fires on its events")
    keys = {(hit.source, row) for hit in hits for row in hit.rows}
    ordered = sorted(events, key=lambda k: (str(events[k]["@timestamp"]), k))
    line_of = {key: n for n, key in enumerate(ordered)}
    groups = alert_groups(hits, events, keys, max_alerts=25)
    alerts = [build_alert(scenario.id, n + 1, g, events, line_of) for n, g in enumerate(groups)]
    credits = sorted({f"{g.hit.title} ({g.hit.rule_id}) by {g.hit.author}" for g in groups})
    body = {
        "schema": "recorded-incident/1",
        "id": scenario.id,
        "title": scenario.title,
        "source": {
            "dataset": dataset,
            "ref": ref,
            "commit": None,
            "license": "Apache-2.0 (events, Garrison); DRL-1.1 (Sigma rules)",
            "attribution": f"{AUTHORS} Alerts by SigmaHQ rules (Detection Rule License 1.1): "
            + "; ".join(credits),
        },
        "environment": {
            "assets": scenario.assets,
            "identities": scenario.identities,
            "internal_networks": NETWORKS,
            "protected": scenario.protected,
        },
        "alerts": [a.model_dump(mode="json") for a in alerts],
        "truth": (truth or BENIGN_TRUTH | {"notes": scenario.notes}),
        "analyst": analyst or {"policy": "oracle", "latency_s": 120},
    }
    incident = RecordedIncident.model_validate(body)
    folder = out / scenario.id
    folder.mkdir(parents=True, exist_ok=True)
    dumped = incident.model_dump(mode="json", by_alias=True, exclude_none=False)
    (folder / INCIDENT_FILE).write_text(json.dumps(dumped, indent=2, ensure_ascii=False) + "\n")
    (folder / "telemetry.jsonl.gz").write_bytes(telemetry_gzip(events[k] for k in ordered))
    return incident


def main(argv: list[str]) -> None:
    if len(argv) != 2:
        raise SystemExit(__doc__)
    rules, out = Path(argv[0]), Path(argv[1])
    for make in SCENARIOS:
        incident = write(make(), rules, out)
        titles = ", ".join(sorted({a.title for a in incident.alerts}))
        print(f"{incident.id}: {len(incident.alerts)} alerts ({titles})")


if __name__ == "__main__":
    main(sys.argv[1:])
