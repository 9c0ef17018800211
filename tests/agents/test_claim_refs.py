"""The agents' claims name the records they rest on (`agents/evidence.py`): over a recorded
lateral movement, each triage claim is one of the rationale's lines and refers to records of
the hosts the agents read, and the investigation's movement finding refers to the hosts it names."""

from __future__ import annotations

from pathlib import Path

from agents.deps import AgentDeps
from agents.investigation.graph import run_investigation
from agents.models import InvestigationInput, TriageInput
from agents.triage.graph import run_triage
from simulations.backends import memory_backends
from simulations.loader import load_all

INCIDENT = (
    Path(__file__).parents[2] / "simulations" / "incidents" / "otrf-covenant-smb-copy-ws5-ws6"
)


async def test_claims_and_findings_refer_to_the_records_of_the_hosts_they_name() -> None:
    (incident,) = load_all([INCIDENT]).incidents
    spec = incident.spec
    tools, _ = memory_backends(spec.environment, incident.telemetry())
    deps = AgentDeps(tools=tools)
    triage = await run_triage(deps, TriageInput(incident_id=spec.id, alerts=spec.alerts))
    report = await run_investigation(
        deps, InvestigationInput(incident_id=spec.id, alerts=spec.alerts, triage=triage)
    )

    assets = {a.id.lower() for a in spec.environment.assets}
    assert triage.claims
    for claim in triage.claims:
        assert claim.text in triage.rationale
        assert claim.refs and all(r.host.lower() in assets for r in claim.refs)
        assert all(r.time.tzinfo is not None for r in claim.refs)
    alert_lines = [c for c in triage.claims if c.text.startswith("alert ")]
    uids = {a.uid for a in spec.alerts}
    assert alert_lines and all(c.refs[0].record_id in uids for c in alert_lines)

    (movement,) = [f for f in report.findings if f.summary.startswith("lateral movement ")]
    hosts = {r.host.lower() for r in movement.refs}  # of the hosts it names, those read
    assert hosts and hosts <= assets, movement
    assert all(h in movement.summary.lower() for h in hosts), movement
