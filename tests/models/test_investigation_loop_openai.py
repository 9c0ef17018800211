"""The investigation's tool-using loop through the real `langchain-openai` client: the canned
OpenAI-compatible server (tests/models/openai_server.py) and the CrowdStrike emulator seeded from
a recorded incident both run on loopback HTTP. The model's questions reach the emulated EDR
through the real adapter, its answers come back as tool messages, and every call and answer is
in the investigation report's evidence."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from agents.deps import AgentDeps
from agents.investigation.graph import run_investigation
from agents.models import InvestigationInput, TriageInput
from agents.triage.graph import run_triage
from orchestrator.model_loading import load_models
from orchestrator.model_settings import ModelSettings
from orchestrator.settings import GarrisonSettings
from tests.agents.emulated_edr import emulated_edr, recorded
from tests.models.openai_server import build_app
from tools.emulators.serve import serve

pytest.importorskip("langchain_openai")

MODEL_FIELDS = {"model_tool_calls", "model_findings", "model_entities", "model_disagreements"}


async def test_the_openai_client_asks_the_emulated_edr_and_its_calls_are_evidence(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    loaded = recorded()
    incident_id = f"loop--{loaded.spec.id}"
    alerts = loaded.spec.alerts
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    async with serve(build_app()) as provider, emulated_edr(loaded) as world:
        models = ModelSettings.model_validate({"base_url": f"{provider}/v1", "timeout_s": 20})
        settings = GarrisonSettings.model_validate(
            {"data_dir": tmp_path, "model": "openai:canned", "models": models}
        )
        agent_models = load_models(settings)
        assert agent_models is not None
        investigator = agent_models.for_incident(incident_id, "investigation")
        tools = world.read_tools(incident_id)
        triage = await run_triage(
            AgentDeps(tools=tools), TriageInput(incident_id=incident_id, alerts=alerts)
        )
        request = InvestigationInput(incident_id=incident_id, alerts=alerts, triage=triage)
        rules = await run_investigation(AgentDeps(tools=tools), request)
        reads_before = len(world.state.ledger)
        report = await run_investigation(AgentDeps(tools=tools, investigator=investigator), request)
        async with httpx.AsyncClient() as http:
            served = (await http.get(f"{provider}/v1/requests")).json()["requests"]
            last = (await http.get(f"{provider}/v1/last")).json()

    calls = report.model_tool_calls
    assert [(c.step, c.tool) for c in calls][:2] == [(1, "ProcessTree"), (2, "NetworkConnections")]
    assert (calls[-1].step, calls[-1].tool, calls[-1].outcome) == (3, "Conclusion", "answered")
    assert all(c.outcome == "answered" for c in calls)
    # real answers: the recording's own processes and its call-back address, read through the
    # real CrowdStrike adapter from the emulator (the rules' reads and the model's both)
    assert '"pid": 4916' in calls[0].result and "whoami" in calls[0].result.lower()
    assert any("10.0.5.13" in c.result for c in calls if c.tool == "NetworkConnections")
    assert len(world.state.ledger) > reads_before
    # the answers went back to the provider as tool messages, fenced as data
    tool_messages = [m for m in last["messages"] if m["role"] == "tool"]
    assert len(tool_messages) >= 2 and all("<<<DATA" in m["content"] for m in tool_messages)
    assert {t["function"]["name"] for t in last["tools"]} >= {"ProcessTree", "Conclusion"}
    assert served == 3 and investigator is not None and investigator.ledger.calls == 3
    assert investigator.ledger.input_tokens > 0  # the provider's usage, counted
    # its conclusion, on an address the answers showed: a labelled finding beside the rules'
    assert any(
        f.summary.startswith("model-generated: ") and "10.0.5.13" in f.evidence
        for f in report.model_findings
    )
    assert report.model_dump(exclude=MODEL_FIELDS) == rules.model_dump(exclude=MODEL_FIELDS)
