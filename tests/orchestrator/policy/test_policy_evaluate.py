"""The policy decision: each rule and its boundaries, the packaged default's SOC judgements, the
L2/L3 misuse cases, and purity."""

from __future__ import annotations

import copy

import pytest

from orchestrator.policy.evaluate import DecisionOutcome, evaluate
from orchestrator.policy.model import PolicyDocument, TargetFacts, TierName, load_policy
from tests.orchestrator.policy.policy_factories import facts, make_policy, with_base
from tools.actions import (
    Action,
    ActionKind,
    BlockDomain,
    BlockIp,
    DisableAccount,
    EnableAccount,
    IsolateHost,
    KillProcess,
    ReleaseHost,
    ResetCredentials,
    TargetKind,
    UnblockIp,
)
from tools.models import AssetKind, Criticality

ALLOW, APPROVAL, DENY = (
    DecisionOutcome.ALLOW,
    DecisionOutcome.NEEDS_APPROVAL,
    DecisionOutcome.DENY,
)


# ---- thresholds -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("risk", "outcome", "approvers", "tier"),
    [
        (0, ALLOW, 0, None),
        (50, ALLOW, 0, None),
        (51, APPROVAL, 1, TierName.STANDARD),
        (80, APPROVAL, 1, TierName.STANDARD),
        (81, APPROVAL, 2, TierName.CRITICAL),
        (100, APPROVAL, 2, TierName.CRITICAL),
    ],
)
def test_outcome_follows_thresholds_at_boundaries(
    risk: int, outcome: DecisionOutcome, approvers: int, tier: TierName | None
) -> None:
    policy = with_base(ActionKind.ISOLATE_HOST, risk)
    decision = evaluate(policy, IsolateHost(target="PRD01"), facts(), 1.0)
    assert (decision.outcome, decision.risk) == (outcome, risk)
    assert (decision.required_approvers, decision.tier) == (approvers, tier)
    assert decision.policy_version == "test.1"


def test_risk_is_clamped_to_100() -> None:
    policy = make_policy(
        weights={
            "base": {k.value: 90 for k in ActionKind},
            "criticality": {c.value: 90 for c in Criticality},
        }
    )
    decision = evaluate(policy, IsolateHost(target="PRD01"), facts(criticality="high"), 1.0)
    assert decision.risk == 100
    assert sum(f.points for f in decision.factors) == 180


# ---- risk terms -----------------------------------------------------------------------------


def _weighted(**weights: object) -> PolicyDocument:
    return make_policy(
        weights={
            "base": {k.value: 10 for k in ActionKind},
            "criticality": {"low": 1, "medium": 2, "high": 3, "critical": 4},
            "asset_kind": {"server": 20, "domain_controller": 40},
            "privileged_identity": 30,
            "blast_radius_per_doubling": 5,
            "low_confidence": 40,
            **weights,
        }
    )


@pytest.mark.parametrize(
    ("action", "target_facts", "confidence", "risk"),
    [
        (IsolateHost(target="PRD01"), facts(criticality="medium"), 1.0, 10 + 2),
        (IsolateHost(target="SRV1"), facts(asset_kind="server", criticality="high"), 1.0, 33),
        (IsolateHost(target="DC1"), facts(asset_kind="domain_controller"), 1.0, 50),
        (IsolateHost(target="PRD01"), facts(asset_kind="workstation"), 1.0, 10),
        (
            DisableAccount(target="adm"),
            facts(TargetKind.IDENTITY, privileged_identity=True),
            1.0,
            40,
        ),
        (DisableAccount(target="bob"), facts(TargetKind.IDENTITY, blast_radius=4), 1.0, 20),
        (BlockIp(target="203.0.113.7"), facts(TargetKind.IP), 1.0, 10),
        (BlockIp(target="203.0.113.0/29"), facts(TargetKind.IP), 1.0, 10 + 3 * 5),
        (BlockIp(target="203.0.113.0/24"), facts(TargetKind.IP), 1.0, 10 + 8 * 5),
        (BlockIp(target="2001:db8::1"), facts(TargetKind.IP), 1.0, 10),
        (BlockIp(target="2001:db8:0:1::/64"), facts(TargetKind.IP), 1.0, 10),
        (BlockIp(target="2001:db8:0:100::/56"), facts(TargetKind.IP), 1.0, 10 + 8 * 5),
        (IsolateHost(target="PRD01"), facts(), 0.5, 10 + 20),
        (IsolateHost(target="PRD01"), facts(), 0.0, 10 + 40),
        (IsolateHost(target="PRD01"), facts(), -3.0, 10 + 40),
        (IsolateHost(target="PRD01"), facts(), 7.0, 10),
        (IsolateHost(target="PRD01"), facts(), float("nan"), 10 + 40),
    ],
)
def test_risk_adds_each_weighted_term(
    action: Action, target_facts: TargetFacts, confidence: float, risk: int
) -> None:
    assert evaluate(_weighted(), action, target_facts, confidence).risk == risk


def test_factors_name_what_made_the_score() -> None:
    decision = evaluate(
        _weighted(),
        IsolateHost(target="SRV1"),
        facts(asset_kind="server", criticality="critical"),
        0.75,
    )
    assert [(f.name, f.points) for f in decision.factors] == [
        ("action isolate_host", 10),
        ("criticality critical", 4),
        ("asset kind server", 20),
        ("verdict confidence 0.75", 10),
    ]
    assert decision.risk == 44


@pytest.mark.parametrize(
    "action",
    [
        ReleaseHost(target="DC1"),
        UnblockIp(target="203.0.113.7"),
        EnableAccount(target="pandalab\\admin"),
    ],
)
def test_inverse_actions_are_scored_too(action: Action) -> None:
    policy = make_policy(
        weights={"base": {k.value: 0 for k in ActionKind} | {action.kind.value: 60}}
    )
    decision = evaluate(policy, action, facts(action.target_kind), 1.0)
    assert (decision.outcome, decision.risk) == (APPROVAL, 60)


# ---- approval rules -------------------------------------------------------------------------


def test_protected_target_needs_approval_even_at_low_risk() -> None:
    decision = evaluate(make_policy(), IsolateHost(target="PRD01"), facts(protected=True), 1.0)
    assert (decision.outcome, decision.required_approvers, decision.tier) == (
        APPROVAL,
        1,
        TierName.STANDARD,
    )
    assert decision.risk == 10


def test_protected_target_above_two_approver_line_is_critical() -> None:
    policy = with_base(ActionKind.ISOLATE_HOST, 81)
    decision = evaluate(policy, IsolateHost(target="PRD01"), facts(protected=True), 1.0)
    assert (decision.required_approvers, decision.tier) == (2, TierName.CRITICAL)


@pytest.mark.parametrize(
    ("action", "kind"),
    [
        (IsolateHost(target="mordordc.pandalab.com"), TargetKind.ASSET),
        (KillProcess(target="MORDORDC:4242"), TargetKind.PROCESS),
        (DisableAccount(target="pandalab\\ceo"), TargetKind.IDENTITY),
        (BlockIp(target="10.9.9.9"), TargetKind.IP),
        (BlockDomain(target="www.Partner.example"), TargetKind.DOMAIN),
    ],
)
def test_policy_protected_list_applies_to_every_target_kind(
    action: Action, kind: TargetKind
) -> None:
    policy = make_policy(protected=["MORDORDC", "ceo", "10.9.0.0/16", "partner.example"])
    decision = evaluate(policy, action, facts(kind), 1.0)
    assert decision.outcome is APPROVAL
    assert any("protected" in reason for reason in decision.reasons)


@pytest.mark.parametrize(("isolations", "outcome"), [(0, ALLOW), (1, APPROVAL), (5, APPROVAL)])
def test_isolations_beyond_the_cap_need_approval(isolations: int, outcome: DecisionOutcome) -> None:
    decision = evaluate(
        make_policy(), IsolateHost(target="PRD02"), facts(), 1.0, isolations_so_far=isolations
    )
    assert decision.outcome is outcome
    assert decision.risk == 10


def test_isolation_cap_counts_only_isolations() -> None:
    decision = evaluate(
        make_policy(), BlockIp(target="203.0.113.7"), facts(TargetKind.IP), 1.0, isolations_so_far=9
    )
    assert decision.outcome is ALLOW


def test_isolation_cap_is_configurable() -> None:
    policy = make_policy(deny={"max_isolations_per_incident": 3})
    action = IsolateHost(target="PRD02")
    assert evaluate(policy, action, facts(), 1.0, isolations_so_far=2).outcome is ALLOW
    assert evaluate(policy, action, facts(), 1.0, isolations_so_far=3).outcome is APPROVAL


# ---- deny rules (L2) ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "target",
    ["0.0.0.0/0", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "::/0", "2001:db8::/32"],
)
def test_wide_networks_are_denied_by_the_default_policy(target: str) -> None:
    decision = evaluate(load_policy(None), BlockIp(target=target), facts(TargetKind.IP), 1.0)
    assert decision.outcome is DENY
    assert decision.required_approvers == 0
    assert any("wider than the minimum prefix" in r for r in decision.reasons)


@pytest.mark.parametrize(
    ("target", "outcome"),
    [
        ("10.0.0.0/15", DENY),
        ("10.0.0.0/16", ALLOW),
        ("2001:db8::/47", DENY),
        ("2001:db8::/48", ALLOW),
    ],
)
def test_minimum_prefix_boundary(target: str, outcome: DecisionOutcome) -> None:
    policy = with_base(ActionKind.BLOCK_IP, 0)
    assert evaluate(policy, BlockIp(target=target), facts(TargetKind.IP), 1.0).outcome is outcome


@pytest.mark.parametrize(
    "target", ["0.0.0.0", "127.0.0.1", "::", "::1", "224.0.0.251", "not-an-ip"]
)
def test_non_unicast_or_unparsable_addresses_are_denied(target: str) -> None:
    decision = evaluate(make_policy(), BlockIp(target=target), facts(TargetKind.IP), 1.0)
    assert decision.outcome is DENY


@pytest.mark.parametrize(
    ("action", "kind"),
    [
        (IsolateHost(target="GARRISON-ORCH01"), TargetKind.ASSET),
        (IsolateHost(target="garrison-orch01.corp.local"), TargetKind.ASSET),
        (KillProcess(target="garrison-orch01:1234"), TargetKind.PROCESS),
        (DisableAccount(target="CORP\\svc-garrison"), TargetKind.IDENTITY),
        (ResetCredentials(target="svc-garrison"), TargetKind.IDENTITY),
        (BlockIp(target="198.51.100.10"), TargetKind.IP),
        (BlockIp(target="198.51.100.0/28"), TargetKind.IP),
        (BlockIp(target="::ffff:198.51.100.10"), TargetKind.IP),
        (BlockDomain(target="hooks.slack.com"), TargetKind.DOMAIN),
        (UnblockIp(target="198.51.100.10"), TargetKind.IP),
    ],
)
def test_never_touch_targets_are_denied_at_full_confidence(
    action: Action, kind: TargetKind
) -> None:
    policy = make_policy(
        deny={
            "never_touch": [
                "garrison-orch01.corp.local",
                "corp\\svc-garrison",
                "198.51.100.10",
                "slack.com",
            ]
        }
    )
    decision = evaluate(policy, action, facts(kind, protected=True), 1.0)
    assert decision.outcome is DENY
    assert decision.reasons == ["target is on the never-touch list"]


def test_never_touch_does_not_match_neighbours() -> None:
    policy = make_policy(deny={"never_touch": ["orch01", "198.51.100.10", "slack.com"]})
    for action, kind in [
        (IsolateHost(target="orch011"), TargetKind.ASSET),
        (BlockIp(target="198.51.100.11"), TargetKind.IP),
        (BlockDomain(target="notslack.com"), TargetKind.DOMAIN),
    ]:
        assert evaluate(policy, action, facts(kind), 1.0).outcome is ALLOW


def test_target_not_extracted_is_denied_even_at_confidence_one() -> None:
    decision = evaluate(
        load_policy(None),
        BlockIp(target="203.0.113.9"),
        facts(TargetKind.IP, known_entity=False),
        1.0,
    )
    assert decision.outcome is DENY
    assert decision.reasons == ["target not extracted from the incident"]


def test_own_infrastructure_is_denied() -> None:
    decision = evaluate(
        make_policy(), IsolateHost(target="ORCH"), facts(own_infrastructure=True), 1.0
    )
    assert decision.outcome is DENY


def test_deny_wins_over_protected_and_high_risk() -> None:
    policy = with_base(ActionKind.ISOLATE_HOST, 100)
    target_facts = facts(protected=True, known_entity=False, own_infrastructure=True)
    decision = evaluate(policy, IsolateHost(target="DC1"), target_facts, 1.0, isolations_so_far=3)
    assert (decision.outcome, decision.required_approvers, decision.tier) == (DENY, 0, None)
    assert decision.risk == 100
    assert len(decision.reasons) == 2


def test_facts_of_another_target_kind_are_denied() -> None:
    decision = evaluate(make_policy(), IsolateHost(target="PRD01"), facts(TargetKind.IP), 1.0)
    assert decision.outcome is DENY


@pytest.mark.parametrize(
    ("image", "outcome"),
    [
        (r"C:\Windows\System32\services.exe", DENY),
        ("LSASS.EXE", DENY),
        (r"C:\Windows\System32\csrss.exe", DENY),
        (r"C:\Users\bob\Desktop\services.exe.bak", ALLOW),
        (r"C:\Windows\System32\WindowsPowerShell\v1.0\powershell.exe", ALLOW),
        (None, ALLOW),
    ],
)
def test_critical_system_processes_are_never_killed(
    image: str | None, outcome: DecisionOutcome
) -> None:
    policy = make_policy(deny={"critical_processes": ["services.exe", "lsass.exe", "csrss.exe"]})
    target_facts = facts(TargetKind.PROCESS, process_image=image)
    decision = evaluate(policy, KillProcess(target="WS6:704"), target_facts, 1.0)
    assert decision.outcome is outcome
    # the rule is about killing: the host of a critical process may still be isolated
    isolation = evaluate(policy, IsolateHost(target="WS6"), facts(process_image=image), 1.0)
    assert isolation.outcome is ALLOW


def test_the_kernels_own_pids_are_never_killed_even_without_an_image() -> None:
    policy = make_policy(deny={"critical_pids": [0, 4]})
    for target, outcome in [("WS6:4", DENY), ("WS6:0", DENY), ("WS6:40", ALLOW)]:
        decision = evaluate(policy, KillProcess(target=target), facts(TargetKind.PROCESS), 1.0)
        assert decision.outcome is outcome, target


# ---- the packaged default's judgements --------------------------------------------------------


def test_default_policy_protects_krbtgt_and_critical_processes() -> None:
    policy = load_policy(None)
    reset = evaluate(
        policy, ResetCredentials(target="theshire\\krbtgt"), facts(TargetKind.IDENTITY), 1.0
    )
    assert reset.outcome is APPROVAL
    assert any("protected" in reason for reason in reset.reasons)
    kill = evaluate(
        policy,
        KillProcess(target="WS6:704"),
        facts(TargetKind.PROCESS, process_image=r"C:\Windows\system32\services.exe"),
        1.0,
    )
    assert kill.outcome is DENY


def _asset(kind: AssetKind, criticality: Criticality) -> TargetFacts:
    return facts(asset_kind=kind, criticality=criticality)


@pytest.mark.parametrize(
    ("action", "target_facts", "confidence", "outcome", "approvers"),
    [
        (
            IsolateHost(target="PRD01"),
            _asset(AssetKind.WORKSTATION, Criticality.MEDIUM),
            0.9,
            ALLOW,
            0,
        ),
        (
            IsolateHost(target="PRD01"),
            _asset(AssetKind.WORKSTATION, Criticality.HIGH),
            0.9,
            ALLOW,
            0,
        ),
        (
            IsolateHost(target="PRD01"),
            _asset(AssetKind.WORKSTATION, Criticality.MEDIUM),
            0.5,
            APPROVAL,
            1,
        ),
        (
            IsolateHost(target="CEO"),
            _asset(AssetKind.WORKSTATION, Criticality.CRITICAL),
            0.9,
            APPROVAL,
            1,
        ),
        (IsolateHost(target="SRV1"), _asset(AssetKind.SERVER, Criticality.LOW), 1.0, APPROVAL, 1),
        (
            IsolateHost(target="DC1"),
            _asset(AssetKind.DOMAIN_CONTROLLER, Criticality.LOW),
            1.0,
            APPROVAL,
            2,
        ),
        (
            DisableAccount(target="pandalab\\adm"),
            facts(TargetKind.IDENTITY, privileged_identity=True),
            1.0,
            APPROVAL,
            2,
        ),
        (DisableAccount(target="pandalab\\pedro"), facts(TargetKind.IDENTITY), 0.9, ALLOW, 0),
        (BlockIp(target="203.0.113.7"), facts(TargetKind.IP), 0.9, ALLOW, 0),
        (BlockIp(target="203.0.113.0/24"), facts(TargetKind.IP), 0.9, APPROVAL, 1),
        (BlockDomain(target="evil.example"), facts(TargetKind.DOMAIN), 0.9, ALLOW, 0),
        (IsolateHost(target="PRD01"), facts(protected=True), 1.0, APPROVAL, 1),
    ],
)
def test_default_policy_makes_soc_sense(
    action: Action,
    target_facts: TargetFacts,
    confidence: float,
    outcome: DecisionOutcome,
    approvers: int,
) -> None:
    decision = evaluate(load_policy(None), action, target_facts, confidence)
    assert (decision.outcome, decision.required_approvers) == (outcome, approvers), decision


def test_default_policy_block_of_single_external_ip_is_low_risk() -> None:
    decision = evaluate(
        load_policy(None), BlockIp(target="203.0.113.7"), facts(TargetKind.IP), 0.95
    )
    assert decision.risk <= 20


# ---- purity ---------------------------------------------------------------------------------


def test_evaluate_is_pure_and_deterministic() -> None:
    policy = load_policy(None)
    action = IsolateHost(target="SRV1")
    target_facts = _asset(AssetKind.SERVER, Criticality.HIGH)
    before = copy.deepcopy((policy, action, target_facts))
    first = evaluate(policy, action, target_facts, 0.8, isolations_so_far=1)
    second = evaluate(policy, action, target_facts, 0.8, isolations_so_far=1)
    assert first == second
    assert first.model_dump_json() == second.model_dump_json()
    assert (policy, action, target_facts) == before


def test_decision_is_the_same_after_a_json_round_trip_of_the_policy() -> None:
    # The workflow receives the policy through Temporal's pydantic converter.
    policy = load_policy(None)
    copied = PolicyDocument.model_validate_json(policy.model_dump_json())
    action = DisableAccount(target="pandalab\\adm")
    target_facts = facts(TargetKind.IDENTITY, privileged_identity=True)
    assert evaluate(copied, action, target_facts, 0.7) == evaluate(
        policy, action, target_facts, 0.7
    )
    assert copied.tiers["critical"] == policy.tiers[TierName.CRITICAL]
