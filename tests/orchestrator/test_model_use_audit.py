"""The audit of the seam's refusals (orchestrator/activities/model_use.py): what the model was
refused or denied (an oversized answer, a tool it was not given, a spent budget) reaches the
incident's audit as one `agent.model` record, beside its usage and its disagreements."""

from __future__ import annotations

from typing import Any

import pytest

from agents.deps import AgentDeps
from agents.model_client import ModelClient, UsageLedger
from agents.models import ExtractedEntities, InvestigationReport, ProposedAction, RejectedChoice
from orchestrator.activities import model_use
from orchestrator.activities.model_use import (
    audit_model_use,
    investigation_disagreements,
    remediation_disagreements,
    step_client,
)
from orchestrator.store.records import AuditEvent
from tools.actions import IsolateHost
from tools.models import Verdict


class Audit:
    def __init__(self) -> None:
        self.events: list[AuditEvent] = []

    async def append_audit(self, event: AuditEvent) -> None:
        self.events.append(event)


def deps(ledger: UsageLedger) -> ModelClient:
    return ModelClient(chat=None, role="triage", name="openai:m", ledger=ledger)


async def test_refusals_and_a_spent_budget_are_audited_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(model_use, "activity_source", lambda: "wf/agents.triage#1")
    ledger = UsageLedger(calls=3, input_tokens=900, output_tokens=40, budget_exceeded=True)
    ledger.events += ["ModelVerdict 1/2: answer refused: call to a tool it was not given: x"]
    ledger.events += ["ModelVerdict: no call, token budget spent (940/900 tokens); deterministic"]
    audit = Audit()
    store: Any = audit
    await audit_model_use(store, "inc-1", deps(ledger), ["triage: model disagrees"])
    [event] = audit.events
    assert event.type == "agent.model" and event.outcome == "deterministic-fallback"
    assert "tool it was not given" in str(event.detail["events"])
    assert "token budget spent" in str(event.detail["events"])
    assert event.detail["input_tokens"] == 900 and event.detail["model"] == "openai:m"
    assert event.detail["disagreements"] == "triage: model disagrees"
    await audit_model_use(store, "inc-1", deps(ledger), ["triage: model disagrees"])
    assert "tool it was not given" not in str(audit.events[-1].detail["events"])  # once


async def test_no_model_writes_nothing() -> None:
    audit = Audit()
    store: Any = audit
    await audit_model_use(store, "inc-1", None, [])
    assert audit.events == []


def test_actions_the_model_added_are_its_disagreements_with_the_plan() -> None:
    action = IsolateHost(target="WS01")
    added = ProposedAction(action=action, rationale="model", from_model=True)
    ruled = ProposedAction(action=action, rationale="rules")
    assert remediation_disagreements([added, ruled]) == [
        "remediation: model added isolate_host WS01"
    ]


def test_choices_refused_before_the_gate_are_disagreements_too() -> None:
    refused = RejectedChoice(kind="isolate_host", target="DC01", reason="not extracted")
    assert remediation_disagreements([], [refused]) == [
        "remediation: model chose isolate_host DC01, refused"
    ]


async def test_an_investigation_model_alone_is_audited_with_its_loops_refusals(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(model_use, "activity_source", lambda: "wf/playbooks.step#1")
    ledger = UsageLedger(calls=2)
    ledger.events += ["investigation tool IsolateHost: refused: a tool it was not given"]
    client = ModelClient(chat=None, role="investigation", name="openai:m", ledger=ledger)
    audit = Audit()
    store: Any = audit
    report = InvestigationReport(
        verdict=Verdict.MALICIOUS,
        confidence=0.9,
        corroborated=True,
        model_entities=ExtractedEntities(users=["CORP\\svc.backup"]),
        model_disagreements=["investigation: model verdict benign, rules malicious; rules kept"],
    )
    only = AgentDeps(tools=None, investigator=client)  # type: ignore[arg-type]
    await audit_model_use(store, "inc-1", step_client(only), investigation_disagreements(report))
    [event] = audit.events
    assert event.target == "investigation" and "IsolateHost: refused" in str(event.detail["events"])
    assert str(event.detail["disagreements"]).splitlines() == [
        "investigation: model verdict benign, rules malicious; rules kept",
        "investigation: model added CORP\\svc.backup",
    ]
