"""Small builders for policy tests: a flat policy whose risk is easy to compute by hand."""

from __future__ import annotations

from typing import Any

from orchestrator.policy.model import PolicyDocument, TargetFacts
from tools.actions import ActionKind, TargetKind
from tools.models import Criticality


def tier(**overrides: Any) -> dict[str, Any]:
    return {
        "sla_s": 900,
        "reminder_after_s": 300,
        "escalation_wait_s": 900,
        "approver_group": "soc-primary",
        "escalation_group": "soc-secondary",
        **overrides,
    }


def policy_data(**overrides: Any) -> dict[str, Any]:
    """Every base weight 10, every other weight 0, unless overridden."""
    weights: dict[str, Any] = {
        "base": {kind.value: 10 for kind in ActionKind},
        "criticality": {level.value: 0 for level in Criticality},
        "asset_kind": {},
        "privileged_identity": 0,
        "blast_radius_per_doubling": 0,
        "low_confidence": 0,
    }
    weights.update(overrides.pop("weights", {}))
    data: dict[str, Any] = {
        "version": "test.1",
        "threshold": 50,
        "two_approver_above": 80,
        "weights": weights,
        "tiers": {"standard": tier(), "critical": tier(sla_s=600, reminder_after_s=120)},
        "protected": [],
        "deny": {"never_touch": []},
    }
    data.update(overrides)
    return data


def make_policy(**overrides: Any) -> PolicyDocument:
    return PolicyDocument.model_validate(policy_data(**overrides))


def with_base(kind: ActionKind, points: int, **overrides: Any) -> PolicyDocument:
    base = {k.value: 10 for k in ActionKind} | {kind.value: points}
    return make_policy(weights={"base": base}, **overrides)


def facts(kind: TargetKind = TargetKind.ASSET, **overrides: Any) -> TargetFacts:
    return TargetFacts.model_validate({"target_kind": kind, "known_entity": True, **overrides})
