"""Triage nodes, built for each run from the agent's dependencies: extract the entities and look
up their reputation (`reputation.py`), score each alert (`scoring.py`), corroborate in telemetry
(`corroboration.py`), decide (`decision.py`), and (with a model) cross-check the decision
(`model_verdict.py`).
"""

from __future__ import annotations

from typing import Any

from agents.deps import AgentDeps
from agents.entities import AssetIndex, extract_entities
from agents.reads import retrying_edr
from agents.seam import ask_structured
from agents.triage.corroboration import corroborate_incident
from agents.triage.decision import decide_incident
from agents.triage.model_verdict import merge_model_verdict, model_data
from agents.triage.prompts import TRIAGE_INSTRUCTIONS, ModelVerdict
from agents.triage.reputation import look_up
from agents.triage.scoring import assess_alert
from agents.triage.state import TriageState


def make_nodes(deps: AgentDeps) -> dict[str, Any]:
    tools = deps.tools
    edr = retrying_edr(tools.edr, deps.reads)  # one retry budget per graph run

    async def extract_entities_node(state: TriageState) -> dict[str, Any]:
        environment = await tools.inventory.environment()
        entities = extract_entities(state["input"].alerts, AssetIndex(environment))
        intel, notes = await look_up(tools.intel, entities)
        return {
            "environment": environment,
            "entities": entities,
            "intel": intel,
            "intel_notes": notes,
        }

    async def score_alerts(state: TriageState) -> dict[str, Any]:
        return {"assessments": [assess_alert(a) for a in state["input"].alerts]}

    async def corroborate(state: TriageState) -> dict[str, Any]:
        return await corroborate_incident(edr, state)

    async def decide(state: TriageState) -> dict[str, Any]:
        return {"result": await decide_incident(state, tools.inventory)}

    async def consult_model(state: TriageState) -> dict[str, Any]:
        if deps.model is None:
            return {}
        deterministic = state["result"]
        answer = await ask_structured(
            deps.model, ModelVerdict, TRIAGE_INSTRUCTIONS, model_data(state)
        )
        return {"result": merge_model_verdict(deterministic, answer, state["assessments"])}

    return {
        "extract_entities": extract_entities_node,
        "score_alerts": score_alerts,
        "corroborate": corroborate,
        "decide": decide,
        "consult_model": consult_model,
    }
