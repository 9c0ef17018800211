"""Triage and investigation over every committed recorded incident, with the in-memory twins.

Reads `truth` only to score, after the agents ran. Figures are printed (`-s`) for the report."""

from __future__ import annotations

from pathlib import Path

import pytest

from agents.deps import AgentDeps
from agents.investigation.graph import run_investigation
from agents.models import InvestigationInput, TriageInput
from agents.remediation.graph import run_remediation
from agents.triage.graph import run_triage
from simulations.backends import memory_backends
from simulations.loader import load_all
from tools.actions import SCORED_KINDS
from tools.models import Verdict

CORPUS = Path(__file__).resolve().parents[2] / "simulations" / "incidents"
pytestmark = pytest.mark.simulation


async def test_corpus_triage_accuracy() -> None:
    loaded = load_all([CORPUS])
    incidents = loaded.incidents
    assert incidents, "the committed corpus is empty"
    rows: list[str] = []
    correct = 0
    false_positive = 0
    benign = 0
    for incident in incidents:
        spec = incident.spec
        tools, _ = memory_backends(spec.environment, incident.telemetry())
        deps = AgentDeps(tools=tools)
        triage = await run_triage(deps, TriageInput(incident_id=spec.id, alerts=spec.alerts))
        report = await run_investigation(
            deps, InvestigationInput(incident_id=spec.id, alerts=spec.alerts, triage=triage)
        )
        plan = await run_remediation(deps, triage, report, SCORED_KINDS)
        truth = spec.truth
        correct += report.verdict is truth.verdict
        if truth.verdict is Verdict.BENIGN:
            benign += 1
            false_positive += report.verdict is Verdict.MALICIOUS
        proposed = sorted(f"{p.action.kind.value}:{p.action.target}" for p in plan.proposals)
        expected = sorted(f"{a.kind.value}:{a.target}" for a in truth.expected_actions)
        rows.append(
            f"{spec.id}: {report.verdict.value}/{triage.category.value} ({report.confidence:.2f})"
            f" truth {truth.verdict.value}/{truth.category.value}\n"
            f"    proposed {proposed}\n    expected {expected}"
        )
    accuracy = correct / len(incidents)
    print("\n".join(rows))
    print(f"accuracy {accuracy:.2f} over {len(incidents)}; benign called malicious "
          f"{false_positive}/{benign}")  # fmt: skip
    assert accuracy >= 0.9
    assert false_positive <= benign // 10  # at most one benign in ten called malicious
