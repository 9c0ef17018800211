"""Every alert of the committed corpus, exported as an OCSF Detection Finding the way
`scripts/export_ocsf.py` and `garrison rehearse` send it, normalises back to the very alert; the
incident's id comes back as the correlation, so the alerts of one incident arrive as one."""

from __future__ import annotations

import json
from pathlib import Path

from orchestrator.ingest.shapes import Shape, alert_to_ocsf, detect_shape, normalise
from simulations.spec import RecordedIncident

CORPUS = Path(__file__).parents[3] / "simulations" / "incidents"


def test_every_corpus_alert_survives_the_ocsf_round_trip() -> None:
    folders = sorted(CORPUS.glob("*/incident.json"))
    assert len(folders) >= 90
    count = 0
    for path in folders:
        incident = RecordedIncident.model_validate_json(path.read_text(encoding="utf-8"))
        for alert in incident.alerts:
            finding = alert_to_ocsf(
                alert,
                incident.environment,
                event_uid_prefix=incident.id,
                correlation_uid=incident.id,
            )
            wire = json.loads(json.dumps(finding))  # as it crosses HTTP
            assert detect_shape(wire) is Shape.OCSF
            got = normalise(wire)
            assert got.alert == alert, f"{incident.id}: {alert.uid}"
            assert got.correlation == incident.id
            assert got.source == f"ocsf:{alert.product}"
            count += 1
    assert count >= 800


def test_round_trip_without_environment_or_evidence_prefix() -> None:
    path = next(iter(sorted(CORPUS.glob("*/incident.json"))))
    incident = RecordedIncident.model_validate_json(path.read_text(encoding="utf-8"))
    alert = incident.alerts[0]
    finding = alert_to_ocsf(alert)
    assert "related_events" not in finding["finding_info"]
    assert normalise(finding).alert == alert
