"""The test kit gives a playbook a recorded incident and answers its proposals as the chosen
approvals mode says, so a test sees the fallbacks; its assertions say what was proposed."""

from __future__ import annotations

import pytest

from orchestrator.playbook_kit.testing import (
    Approvals,
    assert_covers_expected,
    assert_never_proposes,
    assert_proposes,
    run_on_incident,
)
from orchestrator.policy.evaluate import DecisionOutcome
from tools.actions import ActionKind

DCSYNC = "otrf-covenant-dcsync-ws5"


async def test_denied_approvals_lead_the_playbook_to_its_fallback() -> None:
    run = await run_on_incident("credential_access", DCSYNC, approvals=Approvals.DENY)

    first, second = run.rounds
    assert {d.decision.outcome for d in first} == {DecisionOutcome.NEEDS_APPROVAL}
    assert {d.decision.tier for d in first} == {"standard", "critical"}
    assert {d.proposal.action.kind for d in second} == {
        ActionKind.REVOKE_SESSIONS,
        ActionKind.RESET_CREDENTIALS,
    }
    assert run.finished and "0 of 5 proposed actions took effect" in run.summary


async def test_approved_run_covers_the_incident_and_assertions_explain_misses() -> None:
    run = await run_on_incident("credential_access", DCSYNC)

    assert len(run.rounds) == 1  # isolation approved: no fallback
    assert_covers_expected(run)
    assert_never_proposes(run, ActionKind.REVOKE_SESSIONS)
    with pytest.raises(AssertionError, match=r"expected a block_ip proposal; proposed: \["):
        assert_proposes(run, ActionKind.BLOCK_IP)
