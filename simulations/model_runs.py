"""A simulation with the agents' model: each incident's model usage on the scorecard (from the
store's `model_usage` rows, which the workers write), and `--compare-rules`, the differences
between a run with the model and a run of the rules alone, in verdicts, actions and metrics (the
baseline comparison's terms)."""

from __future__ import annotations

from typing import Any

from agents.model_client import AgentModels
from orchestrator.store.model_use import ModelUsageRecord
from simulations.baseline import compare
from simulations.scorer import ModelUsage, RoleFigures, Scorecard


def with_model_usage(
    card: Scorecard,
    models: AgentModels,
    ids: dict[str, str],
    usage: dict[str, list[ModelUsageRecord]],
) -> Scorecard:
    """`card` with each incident's `model` usage, from the store's rows (`usage`, by incident id;
    `ids` maps recorded ids to incident ids): what the console and `/metrics` read too."""
    name = models.names.get("triage") or next(iter(models.names.values()), "model")
    rows = []
    for row in card.per_incident:
        found = usage.get(ids[row.id], [])
        figures = ModelUsage(
            model=name,
            calls=sum(r.calls for r in found),
            answered=sum(r.answered for r in found),
            input_tokens=sum(r.input_tokens for r in found),
            output_tokens=sum(r.output_tokens for r in found),
            cost_usd=round(sum(r.cost_usd for r in found), 6),
            latency_s=round(sum(r.latency_s for r in found), 3),
            budget_exceeded=any(r.budget_exceeded for r in found),
            disagreements=[line for r in found for line in r.disagreements],
            roles={
                r.role: RoleFigures(
                    model=r.model,
                    calls=r.calls,
                    input_tokens=r.input_tokens,
                    output_tokens=r.output_tokens,
                    cost_usd=r.cost_usd,
                    latency_s=r.latency_s,
                )
                for r in found
            },
        )
        rows.append(row.model_copy(update={"model": figures}))
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
