"""The EDR emulators' alert renderers (`tools/edr/emulators/alert_shapes.py`) write what the
ingestion shapes read back: a Graph alert keeps the domain an alert names (as URL evidence), and a
Falcon alert keeps it too (as its DNS request)."""

from __future__ import annotations

from datetime import UTC, datetime

from orchestrator.ingest.shapes import Shape, normalise
from tools.edr.emulators.alert_shapes import falcon_alert, graph_alert
from tools.models import Alert, AlertEntities, ProcessRef, RuleRef, Severity

T0 = datetime(2024, 1, 1, 8, 30, tzinfo=UTC)


def _alert(domain: str | None) -> Alert:
    return Alert(
        uid="rec:1",
        time=T0,
        title="Suspicious DNS query",
        severity=Severity.HIGH,
        product="sigma",
        rule=RuleRef(uid="r1", name="Suspicious DNS query"),
        entities=AlertEntities(
            host="WS5",
            user="lab\\pedro",
            process=ProcessRef(pid=42, name="powershell.exe"),
            domain=domain,
        ),
    )


def test_graph_alert_carries_the_domain_as_url_evidence() -> None:
    machine = {"id": "m1", "computerDnsName": "WS5"}
    body = graph_alert(_alert("c2.example.org"), machine, "tenant", "7", T0, 0)
    urls = [e for e in body["evidence"] if e["@odata.type"].endswith("urlEvidence")]
    assert [e["url"] for e in urls] == ["c2.example.org"]
    entities = normalise(body, Shape.GRAPH).alert.entities
    assert (entities.domain, entities.host, entities.user) == (
        "c2.example.org",
        "WS5",
        "lab\\pedro",
    )


def test_graph_alert_without_a_domain_has_no_url_evidence() -> None:
    body = graph_alert(_alert(None), {"id": "m1", "computerDnsName": "WS5"}, "tenant", "7", T0, 0)
    assert not [e for e in body["evidence"] if e["@odata.type"].endswith("urlEvidence")]
    assert normalise(body, Shape.GRAPH).alert.entities.domain is None


def test_falcon_alert_carries_the_domain_as_its_dns_request() -> None:
    device = {"device_id": "d" * 32, "hostname": "WS5"}
    entity = falcon_alert(_alert("c2.example.org"), device, "0" * 32, T0, 0)
    assert normalise(entity, Shape.FALCON).alert.entities.domain == "c2.example.org"
