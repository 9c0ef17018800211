"""`response.execute` re-verifies the approval it carries against the store before any vendor
call: approved, bound to this very action, and carried by enough distinct humans' recorded
claims. Whatever a workflow (or a forger who starts one) says, nothing else executes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from orchestrator.activities.response import ResponseActivities
from orchestrator.models import ExecuteActionInput
from orchestrator.policy.model import PolicyDocument, load_policy
from orchestrator.store.records import ApprovalRecord, ApprovalStatus, DecisionClaim
from orchestrator.store.repository import Store
from tools.actions import (
    Action,
    BlockIp,
    DisableAccount,
    IsolateHost,
    KillProcess,
    ResetCredentials,
    action_hash,
)

INCIDENT = "live-verify"
POLICY = "test-policy"


class VendorReached(Exception):
    """Raised by the stub vendor: verification let the call through."""


class NoVendor:
    """Backends whose response tools fail the test's expectations loudly when touched."""

    def __init__(self) -> None:
        self.calls = 0

    def response_tools(self, incident_id: str) -> Any:
        self.calls += 1
        raise VendorReached(incident_id)

    def read_tools(self, incident_id: str) -> Any:
        raise AssertionError("execute reads no telemetry")


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    store = await Store.open(f"sqlite:///{tmp_path / 'garrison.db'}")
    yield store
    await store.close()


async def approval(
    store: Store, action: Action, *, approvers: list[str], status: ApprovalStatus, required: int = 2
) -> str:
    digest = action_hash(INCIDENT, action, POLICY)
    approval_id = f"apr-{digest[:16]}"
    now = datetime.now(UTC)
    await store.create_approval(
        ApprovalRecord(
            id=approval_id,
            incident_id=INCIDENT,
            action=action,
            action_hash=digest,
            risk=85,
            required_approvers=required,
            approver_group="soc-primary",
            requester="garrison-agent",
            policy_version=POLICY,
            created_at=now,
            deadline=now + timedelta(minutes=30),
        )
    )
    for n, user in enumerate(approvers):
        await store.decisions.record_claim(
            DecisionClaim(
                decision_id=f"{approval_id}-{n}",
                approval_id=approval_id,
                incident_id=INCIDENT,
                action_hash=digest,
                user=user,
                groups=["soc-primary"],
                decision="approve",
                channel="api",
                at=now,
            )
        )
    if status is not ApprovalStatus.PENDING:
        await store.transition_approval(approval_id, status, decided_at=now)
    return approval_id


async def execute(
    store: Store, action: Action, approval_id: str | None, policy: PolicyDocument | None = None
) -> NoVendor:
    vendor = NoVendor()
    activities = ResponseActivities(store, vendor, policy)  # type: ignore[arg-type]
    request = ExecuteActionInput(
        incident_id=INCIDENT,
        action=action,
        risk=85,
        approval_id=approval_id,
        approved_by=["alice", "bob"],  # what the workflow claims, never what is checked
        policy_version=POLICY,
    )
    await ActivityEnvironment().run(activities.execute, request)
    return vendor


@pytest.mark.parametrize(
    ("approvers", "status", "why"),
    [
        (["alice", "bob"], ApprovalStatus.PENDING, "is pending, not approved"),
        (["alice", "bob"], ApprovalStatus.DENIED, "is denied, not approved"),
        ([], ApprovalStatus.APPROVED, "0 recorded human approver"),
        (["alice"], ApprovalStatus.APPROVED, "1 recorded human approver"),
        (["alice", " ALICE"], ApprovalStatus.APPROVED, "1 recorded human approver"),
        (["alice", "garrison-agent"], ApprovalStatus.APPROVED, "1 recorded human approver"),
    ],
)
async def test_an_approval_the_store_does_not_stand_behind_executes_nothing(
    store: Store, approvers: list[str], status: ApprovalStatus, why: str
) -> None:
    action = IsolateHost(target="DC01")
    approval_id = await approval(store, action, approvers=approvers, status=status)
    with pytest.raises(ApplicationError) as refused:
        await execute(store, action, approval_id)
    assert refused.value.type == "ApprovalNotVerified" and refused.value.non_retryable
    assert why in str(refused.value)
    assert await store.actions_for(INCIDENT) == []
    audit = [e for e in await store.audit_entries(INCIDENT)]
    assert [(e.type, e.approval_ref) for e in audit] == [
        ("response.refused_unverified_approval", approval_id)
    ]


async def test_an_approval_of_another_action_or_an_unknown_one_executes_nothing(
    store: Store,
) -> None:
    approved = IsolateHost(target="WS01")
    approval_id = await approval(
        store, approved, approvers=["alice", "bob"], status=ApprovalStatus.APPROVED
    )
    for action, apr, why in (
        (IsolateHost(target="DC01"), approval_id, "another action"),
        (approved, "apr-ffffffffffffffff", "no approval"),
    ):
        with pytest.raises(ApplicationError, match=why):
            await execute(store, action, apr)
    assert await store.actions_for(INCIDENT) == []


async def test_an_approval_two_humans_gave_reaches_the_vendor(store: Store) -> None:
    action = IsolateHost(target="DC01")
    approval_id = await approval(
        store, action, approvers=["alice", "Bob"], status=ApprovalStatus.APPROVED
    )
    with pytest.raises(VendorReached):
        await execute(store, action, approval_id)


@pytest.mark.parametrize(
    ("action", "approved", "why"),
    [
        (BlockIp(target="127.0.0.1"), True, "never-touch"),
        (BlockIp(target="10.0.0.0/8"), True, "wider than the minimum prefix"),
        (KillProcess(target="WS01:4"), True, "kernel"),
        (ResetCredentials(target="krbtgt"), False, "protected"),
        (DisableAccount(target="krbtgt"), True, "ticket key"),
        (DisableAccount(target="NT AUTHORITY\\ANONYMOUS LOGON"), True, "built-in principal"),
    ],
)
async def test_the_deployments_own_policy_stands_whatever_the_workflow_carried(
    store: Store, action: Action, approved: bool, why: str
) -> None:
    """A workflow started straight on Temporal can carry a lenient policy in its input; the
    actions worker re-checks its own policy's standing rules before any vendor call."""
    approval_id = None
    if approved:
        approval_id = await approval(
            store, action, approvers=["alice", "bob"], status=ApprovalStatus.APPROVED
        )
    with pytest.raises(ApplicationError, match=why) as refused:
        await execute(store, action, approval_id, load_policy(None))
    assert refused.value.type == "PolicyDenied" and refused.value.non_retryable
    refusals = [e.type for e in await store.audit_entries(INCIDENT)]
    assert refusals == ["response.refused_by_policy"]


async def test_an_ordinary_allowed_action_passes_the_policy_floor(store: Store) -> None:
    with pytest.raises(VendorReached):
        await execute(store, BlockIp(target="203.0.113.7"), None, load_policy(None))
