"""The policy on degraded evidence: the capped confidence alone takes every containment over the
packaged policy's threshold, and the `degraded` fact takes it to a human whatever a deployment's
weights; deny rules still win; facts recorded before the fact existed decode as not degraded."""

from __future__ import annotations

import pytest

from agents.degraded import DEGRADED_CONFIDENCE
from orchestrator.policy.evaluate import DecisionOutcome, evaluate
from orchestrator.policy.model import TargetFacts, load_policy
from tests.orchestrator.policy.policy_factories import facts, make_policy
from tools.actions import ActionKind, TargetKind, parse_action
from tools.models import AssetKind, Criticality

# What the playbooks propose, each on the least risky target it can have.
CONTAINMENTS = [
    (ActionKind.ISOLATE_HOST, "WS1"),
    (ActionKind.KILL_PROCESS, "WS1:4242"),
    (ActionKind.QUARANTINE_FILE, "WS1:C:\\Users\\a\\x.exe"),
    (ActionKind.BLOCK_IP, "203.0.113.7"),
    (ActionKind.BLOCK_DOMAIN, "evil.example"),
    (ActionKind.DISABLE_ACCOUNT, "corp\\alice"),
    (ActionKind.RESET_CREDENTIALS, "corp\\alice"),
    (ActionKind.REVOKE_SESSIONS, "corp\\alice"),
    (ActionKind.REMOVE_PERSISTENCE, "WS1:HKLM\\Software\\Run\\x"),
]
GAPS = ["process events on WS1 unavailable (TransientToolError)"]


def _least_risky(kind: ActionKind, target: str, *, degraded: bool) -> tuple[object, TargetFacts]:
    action = parse_action(kind.value, target)
    extra = {"asset_kind": AssetKind.WORKSTATION, "criticality": Criticality.LOW}
    if action.target_kind not in (TargetKind.ASSET, TargetKind.PROCESS, TargetKind.FILE):
        extra = {}
    gaps = GAPS if degraded else []
    return action, facts(action.target_kind, degraded=degraded, evidence_gaps=gaps, **extra)


@pytest.mark.parametrize(("kind", "target"), CONTAINMENTS)
def test_the_capped_confidence_alone_needs_approval_under_the_packaged_policy(
    kind: ActionKind, target: str
) -> None:
    policy = load_policy(None)
    action, target_facts = _least_risky(kind, target, degraded=False)
    assert evaluate(policy, action, target_facts, 0.99).outcome is DecisionOutcome.ALLOW  # type: ignore[arg-type]
    decision = evaluate(policy, action, target_facts, DEGRADED_CONFIDENCE)  # type: ignore[arg-type]
    assert decision.outcome is DecisionOutcome.NEEDS_APPROVAL, decision.risk
    assert decision.risk > policy.threshold


@pytest.mark.parametrize(("kind", "target"), CONTAINMENTS)
def test_the_degraded_fact_needs_approval_whatever_the_weights(
    kind: ActionKind, target: str
) -> None:
    flat = make_policy()  # every base 10, no confidence weight: all of these allowed
    action, sound = _least_risky(kind, target, degraded=False)
    assert evaluate(flat, action, sound, 1.0).outcome is DecisionOutcome.ALLOW  # type: ignore[arg-type]
    _, degraded = _least_risky(kind, target, degraded=True)
    decision = evaluate(flat, action, degraded, 1.0)  # type: ignore[arg-type]
    assert decision.outcome is DecisionOutcome.NEEDS_APPROVAL
    assert decision.required_approvers == 1
    assert "evidence degraded: approval required whatever the risk" in decision.reasons
    assert decision.evidence_gaps == GAPS


def test_a_deny_rule_still_wins_over_degraded_evidence() -> None:
    policy = make_policy(deny={"never_touch": ["WS1"]})
    action, degraded = _least_risky(ActionKind.ISOLATE_HOST, "WS1", degraded=True)
    decision = evaluate(policy, action, degraded, 1.0)  # type: ignore[arg-type]
    assert decision.outcome is DecisionOutcome.DENY
    assert decision.evidence_gaps == GAPS  # the record still says what was missing


def test_facts_recorded_before_degraded_evidence_existed_decode_as_sound() -> None:
    recorded = {"target_kind": "asset", "known_entity": True, "protected": False}
    old = TargetFacts.model_validate(recorded)
    assert not old.degraded and old.evidence_gaps == []
    decision = evaluate(make_policy(), parse_action("isolate_host", "WS1"), old, 1.0)
    assert decision.outcome is DecisionOutcome.ALLOW and decision.evidence_gaps == []
