"""The policy's floor under identity actions (issue 12, cause 3): the operating system's own
principals are nobody's account and machine accounts and krbtgt are never locked out, whatever
the score, the confidence or an approval; people's accounts are scored as before."""

from __future__ import annotations

import pytest

from orchestrator.policy.evaluate import DecisionOutcome, evaluate, standing_denials
from orchestrator.policy.model import load_policy
from tests.orchestrator.policy.policy_factories import facts, make_policy
from tools.actions import (
    Action,
    DisableAccount,
    EnableAccount,
    ResetCredentials,
    RevokeSessions,
    TargetKind,
)

BUILT_IN = [
    "NT AUTHORITY\\ANONYMOUS LOGON",
    "ANONYMOUS LOGON",
    "nt authority\\system",
    "SYSTEM",
    "NT AUTHORITY\\LOCAL SERVICE",
    "NETWORK SERVICE",
    "Window Manager\\DWM-3",
    "Font Driver Host\\UMFD-0",
    "NT SERVICE\\MSSQLSERVER",
    "S-1-5-7",
    "S-1-5-18",
    "-",
]


@pytest.mark.parametrize("target", BUILT_IN)
@pytest.mark.parametrize(
    "action", [DisableAccount, ResetCredentials, RevokeSessions, EnableAccount]
)
def test_identity_actions_on_built_in_principals_are_denied_whatever_the_score(
    target: str, action: type[Action]
) -> None:
    # the packaged policy at full confidence would allow an ordinary account's disable (35)
    decision = evaluate(load_policy(), action(target=target), facts(TargetKind.IDENTITY), 1.0)
    assert decision.outcome is DecisionOutcome.DENY
    assert any("built-in principal" in r for r in decision.reasons)
    assert standing_denials(load_policy(), action(target=target))  # re-checked before acting


@pytest.mark.parametrize("target", ["CONTOSO\\WS07$", "ws07$", "contoso\\krbtgt", "krbtgt"])
def test_machine_accounts_and_krbtgt_are_never_locked_out_but_may_be_reset(target: str) -> None:
    policy = make_policy()
    for lockout in (DisableAccount, RevokeSessions):
        decision = evaluate(policy, lockout(target=target), facts(TargetKind.IDENTITY), 1.0)
        assert decision.outcome is DecisionOutcome.DENY
    # a reset is their remedy (a DC's machine secret after Netlogon abuse, krbtgt after DCSync)
    reset = evaluate(policy, ResetCredentials(target=target), facts(TargetKind.IDENTITY), 1.0)
    assert reset.outcome is DecisionOutcome.ALLOW


@pytest.mark.parametrize(
    "target", ["CONTOSO\\alice", "alice@contoso.local", "svc_sql", "anonymous.user", "system.admin"]
)
def test_people_and_service_accounts_are_scored_as_before(target: str) -> None:
    decision = evaluate(
        make_policy(), DisableAccount(target=target), facts(TargetKind.IDENTITY), 1.0
    )
    assert decision.outcome is DecisionOutcome.ALLOW


def test_a_protected_account_is_matched_whatever_its_spelling() -> None:
    policy = make_policy(protected=["contoso\\alice"])
    action = DisableAccount(target="alice@CONTOSO.LOCAL")
    decision = evaluate(policy, action, facts(TargetKind.IDENTITY), 1.0)
    assert decision.outcome is DecisionOutcome.NEEDS_APPROVAL
