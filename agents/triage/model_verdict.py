"""The model's side of triage: what it is shown (typed facts and truncated alert text, never
instructions) and how its answer is merged with the rules' verdict, which it may only make more
cautious (docs/models.md, "What the model may and may not do")."""

from __future__ import annotations

from agents.attention import MAX_MODEL_ALERTS, rank_alerts
from agents.knowledge import CATEGORY_RESPONSE, TACTIC_CATEGORY
from agents.models import TriageResult
from agents.seam import truncate
from agents.triage.prompts import ModelVerdict
from agents.triage.state import AlertAssessment, TriageState
from tools.models import Verdict


def model_data(state: TriageState) -> dict[str, object]:
    """What the model sees: typed facts and truncated alert text, never instructions."""
    alerts = rank_alerts(state["input"].alerts, state["assessments"])[:MAX_MODEL_ALERTS]
    return {
        "alerts": [
            {
                "title": truncate(a.title, 200),
                "severity": a.severity.value,
                "techniques": [x.technique for x in a.attacks][:5],
                "host": truncate(a.entities.host or "", 100),
                "user": truncate(a.entities.user or "", 100),
                "cmd_line": truncate(a.entities.process.cmd_line or "", 400)
                if a.entities.process
                else "",
            }
            for a in alerts
        ],
        "telemetry_notes": [truncate(n, 200) for n in state.get("corroboration", [])[:10]],
    }


def merge_model_verdict(
    deterministic: TriageResult, answer: ModelVerdict | None, assessments: list[AlertAssessment]
) -> TriageResult:
    """The model may lower confidence and pick a category the alerts support whose response is
    no wider than the rules' category's (it may narrow containment, never widen it: the category
    chooses the playbook); it can neither flip the deterministic verdict nor raise confidence.
    Disagreement is recorded."""
    if answer is None:
        return deterministic.model_copy(
            update={
                "rationale": [*deterministic.rationale, "model: no usable answer; deterministic"]
            }
        )
    notes = [f"model: {answer.verdict.value}, {answer.category.value}, {answer.confidence:.2f}"]
    update: dict[str, object] = {"model_used": True}
    if answer.verdict is not deterministic.verdict:
        notes.append(
            "model disagrees with the deterministic verdict; verdict kept, confidence lowered"
        )
        update["confidence"] = round(
            min(deterministic.confidence, 0.5 + (1 - answer.confidence) / 2), 3
        )
    else:
        update["confidence"] = round(min(deterministic.confidence, answer.confidence), 3)
        supported = {TACTIC_CATEGORY.get(t) for a in assessments if not a.noisy for t in a.tactics}
        wider = set(CATEGORY_RESPONSE.get(answer.category, ())) - set(
            CATEGORY_RESPONSE.get(deterministic.category, ())
        )
        if answer.category is deterministic.category:
            pass  # agreement: nothing to change
        elif wider:
            kinds = ", ".join(sorted(k.value for k in wider))
            notes.append(
                f"model's category {answer.category.value} would add {kinds} to the response:"
                f" category {deterministic.category.value} kept"
            )
        elif deterministic.verdict is Verdict.MALICIOUS and answer.category in supported:
            update["category"] = answer.category
            notes.append(f"category {deterministic.category.value} -> {answer.category.value}")
    update["rationale"] = [*deterministic.rationale, *notes]
    return deterministic.model_copy(update=update)
