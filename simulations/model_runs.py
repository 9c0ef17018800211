"""A simulation with the agents' model: each incident's model usage on the scorecard (from the
incident's ledger), and `--compare-rules`, the differences between a run with the model and a run
of the rules alone, in verdicts, actions and metrics (the baseline comparison's terms)."""

from __future__ import annotations

from typing import Any

from agents.model_client import AgentModels
from simulations.baseline import compare
from simulations.scorer import ModelUsage, Scorecard


def with_model_usage(card: Scorecard, models: AgentModels, ids: dict[str, str]) -> Scorecard:
    """`card` with each incident's `model` usage; `ids` maps recorded ids to incident ids."""
    name = models.names.get("triage") or next(iter(models.names.values()), "model")
    rows = []
    for row in card.per_incident:
        ledger = models.ledger(ids[row.id])
        usage = ModelUsage(
            model=name,
            calls=ledger.calls,
            answered=ledger.answered,
            input_tokens=ledger.input_tokens,
            output_tokens=ledger.output_tokens,
            cost_usd=round(ledger.cost_usd, 6),
            latency_s=round(ledger.latency_s, 3),
            budget_exceeded=ledger.budget_exceeded,
            disagreements=list(ledger.disagreements),
        )
        rows.append(row.model_copy(update={"model": usage}))
    return card.model_copy(update={"per_incident": rows})


def compare_with_rules(with_model: dict[str, Any], rules_only: dict[str, Any]) -> list[str]:
    """One line per difference the model made, against the rules alone."""
    return compare(with_model, rules_only)


def model_totals(card: Scorecard) -> dict[str, float | int]:
    """The run's model figures, summed over its incidents."""
    used = [row.model for row in card.per_incident if row.model is not None]
    return {
        "incidents_with_model_calls": sum(1 for u in used if u.calls),
        "calls": sum(u.calls for u in used),
        "answered": sum(u.answered for u in used),
        "tokens": sum(u.input_tokens + u.output_tokens for u in used),
        "cost_usd": round(sum(u.cost_usd for u in used), 6),
        "latency_s": round(sum(u.latency_s for u in used), 3),
        "budget_exceeded": sum(1 for u in used if u.budget_exceeded),
        "disagreements": sum(len(u.disagreements) for u in used),
    }
