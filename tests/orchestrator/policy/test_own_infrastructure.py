"""Garrison's own infrastructure is derived from the settings and denied, approved or not, at
proposal time and again when an action is about to run. Before, `TargetFacts.own_infrastructure`
was never set, so the rule could not fire: an alert that named the Temporal server's address as
the attacker, or the EDR's API domain as C2, could get it blocked with one approval."""

from __future__ import annotations

import pytest

from orchestrator.activities.guards import policy_floor
from orchestrator.policy.evaluate import DecisionOutcome, evaluate
from orchestrator.policy.model import load_policy
from orchestrator.policy.own_infrastructure import derive, with_own_infrastructure
from orchestrator.settings import GarrisonSettings
from tests.orchestrator.policy.policy_factories import facts
from tools.actions import Action, BlockDomain, BlockIp, DisableAccount, IsolateHost, TargetKind


@pytest.fixture
def settings(monkeypatch: pytest.MonkeyPatch) -> GarrisonSettings:
    monkeypatch.setenv("GARRISON_CROWDSTRIKE_BASE_URL", "https://api.us-2.crowdstrike.com")
    monkeypatch.setenv("GARRISON_CROWDSTRIKE_CLIENT_ID", "id")
    monkeypatch.setenv("GARRISON_CROWDSTRIKE_CLIENT_SECRET", "secret")
    return GarrisonSettings.model_validate(
        {
            "temporal": {"address": "temporal.soc.example:7233"},
            "database_url": "postgresql+asyncpg://garrison@10.20.0.7:5432/garrison",
            "agent_identity": "svc-garrison",
        }
    )


def test_the_settings_name_the_deployments_own_infrastructure(
    settings: GarrisonSettings,
) -> None:
    own = derive(settings)
    assert own.hosts == ["temporal.soc.example"]
    assert own.addresses == ["10.20.0.7"]
    assert {"api.us-2.crowdstrike.com", "slack.com", "temporal.soc.example"} <= set(own.domains)
    assert own.identities == ["svc-garrison"]


@pytest.mark.parametrize(
    "action",
    [
        BlockIp(target="10.20.0.7"),  # the store
        BlockIp(target="10.20.0.0/24"),  # a network holding it
        BlockDomain(target="api.us-2.crowdstrike.com"),  # the EDR's API
        BlockDomain(target="crowdstrike.com"),  # not a subdomain of a listed one: allowed below
        IsolateHost(target="temporal"),  # the Temporal server, by its asset id
        DisableAccount(target="CORP\\svc-garrison"),  # the agent's own account
    ],
    ids=lambda a: f"{a.kind.value}:{a.target}",
)
def test_actions_on_it_are_denied_whatever_the_approval(
    settings: GarrisonSettings, action: Action
) -> None:
    policy = with_own_infrastructure(load_policy(None), derive(settings))
    decision = evaluate(policy, action, facts(action.target_kind), 1.0)
    floor = policy_floor(policy, action, approval_id="apr-approved")
    if action.target == "crowdstrike.com":  # the parent domain is someone else's infrastructure
        assert decision.outcome is not DecisionOutcome.DENY and floor is None
        return
    assert decision.outcome is DecisionOutcome.DENY
    assert "target is part of Garrison's own infrastructure" in decision.reasons
    assert floor is not None and "own infrastructure" in floor


def test_a_public_api_name_does_not_protect_an_estate_host_of_the_same_first_label(
    settings: GarrisonSettings,
) -> None:
    policy = with_own_infrastructure(load_policy(None), derive(settings))
    decision = evaluate(policy, IsolateHost(target="api"), facts(TargetKind.ASSET), 1.0)
    assert decision.outcome is not DecisionOutcome.DENY


def test_the_operators_own_entries_stay_and_the_version_does_not_move(
    settings: GarrisonSettings,
) -> None:
    base = load_policy(None)
    listed = base.deny.own_infrastructure.model_copy(update={"hosts": ["siem01"]})
    policy = base.model_copy(
        update={"deny": base.deny.model_copy(update={"own_infrastructure": listed})}
    )
    merged = with_own_infrastructure(policy, derive(settings))
    assert merged.deny.own_infrastructure.hosts == ["siem01", "temporal.soc.example"]
    assert merged.version == base.version
