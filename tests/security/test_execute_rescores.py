"""`response.execute` scores the action again under the deployment's own policy, on facts it
reads itself (the inventory, the ledger), before any vendor call: a workflow started straight on
Temporal with a lenient policy in its input, a high threshold or no approval at all, cannot take
a domain controller off the network, disable an administrator or block a /24 on nobody's word,
nor carry one approver where the deployment asks for two. A genuine workflow's allowed action
passes: the check assumes full verdict confidence, the lowest risk the action could have."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from orchestrator.activities.response import ResponseActivities
from orchestrator.models import ExecuteActionInput
from orchestrator.policy.model import load_policy
from orchestrator.store.records import (
    ActionRecord,
    ActionStatus,
    ApprovalStatus,
)
from orchestrator.store.repository import Store
from tests.security.test_execute_verifies_approval import INCIDENT, POLICY, approval
from tools.actions import Action, BlockIp, DisableAccount, IsolateHost, business_key
from tools.inventory.memory import InMemoryInventory
from tools.models import Asset, AssetKind, Criticality, Environment, Identity, IdentityKind

ENVIRONMENT = Environment(
    assets=[
        Asset(id="DC1", kind=AssetKind.DOMAIN_CONTROLLER, criticality=Criticality.CRITICAL),
        Asset(id="WS1", kind=AssetKind.WORKSTATION, criticality=Criticality.MEDIUM),
        Asset(id="WS2", kind=AssetKind.WORKSTATION, criticality=Criticality.MEDIUM),
        Asset(id="WS3", kind=AssetKind.WORKSTATION, criticality=Criticality.MEDIUM),
    ],
    identities=[
        Identity(id="CORP\\admin1", kind=IdentityKind.ADMIN, privileged=True),
        Identity(id="CORP\\user1", kind=IdentityKind.USER),
    ],
)


class VendorReached(Exception):
    """The check let the action through to the vendor call."""


class InventoryOnly:
    """Response tools whose inventory answers and whose vendors end the test when touched."""

    def response_tools(self, incident_id: str) -> Any:
        inventory = InMemoryInventory(ENVIRONMENT)
        return SimpleNamespace(
            inventory=inventory, edr=_Reached(), identity=_Reached(), firewall=_Reached()
        )


class _Reached:
    def __getattr__(self, name: str) -> Any:
        raise VendorReached(name)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    store = await Store.open(f"sqlite:///{tmp_path / 'garrison.db'}")
    yield store
    await store.close()


async def execute(store: Store, action: Action, approval_id: str | None = None) -> None:
    activities = ResponseActivities(store, InventoryOnly(), load_policy(None))  # type: ignore[arg-type]
    request = ExecuteActionInput(
        incident_id=INCIDENT,
        action=action,
        risk=5,  # what a lenient policy in the workflow's input scored it
        approval_id=approval_id,
        policy_version=POLICY,
    )
    await ActivityEnvironment().run(activities.execute, request)


async def one_approver(store: Store, action: Action) -> str:
    """An approval the store stands behind, for one human: a standard-tier request."""
    return await approval(
        store, action, approvers=["alice"], status=ApprovalStatus.APPROVED, required=1
    )


@pytest.mark.parametrize(
    ("action", "needed"),
    [
        (IsolateHost(target="DC1"), "requires 2 approver(s)"),
        (DisableAccount(target="corp\\ADMIN1"), "requires 2 approver(s)"),
        (BlockIp(target="203.0.113.0/24"), "requires 1 approver(s)"),
    ],
)
async def test_no_approval_where_the_deployment_wants_one_executes_nothing(
    store: Store, action: Action, needed: str
) -> None:
    with pytest.raises(ApplicationError, match=re.escape(needed)) as refused:
        await execute(store, action)
    assert refused.value.type == "PolicyDenied" and refused.value.non_retryable
    assert "it carries 0" in str(refused.value)
    assert await store.actions_for(INCIDENT) == []
    assert [e.type for e in await store.audit_entries(INCIDENT)] == ["response.refused_by_policy"]


async def test_one_approver_where_the_deployment_wants_two_executes_nothing(store: Store) -> None:
    action = IsolateHost(target="DC1")
    approval_id = await one_approver(store, action)
    with pytest.raises(ApplicationError, match=r"requires 2 approver\(s\).*it carries 1"):
        await execute(store, action, approval_id)
    assert await store.actions_for(INCIDENT) == []


async def test_isolations_past_the_incidents_cap_need_a_human(store: Store) -> None:
    cap = load_policy(None).deny.max_isolations_per_incident
    done = [IsolateHost(target=f"WS{n}") for n in range(1, cap + 1)]
    for action in done:
        await store.ledger_begin(
            ActionRecord(
                business_key=business_key(INCIDENT, action),
                incident_id=INCIDENT,
                action=action,
                risk=5,
                decision="allowed",
                status=ActionStatus.PENDING,
                created_at=datetime.now(UTC),
            )
        )
        await store.ledger_finish(
            business_key(INCIDENT, action),
            status=ActionStatus.SUCCEEDED,
            outcome="applied",
            already_in_state=False,
            verified=True,
            inverse=None,
        )
    with pytest.raises(ApplicationError, match=re.escape(f"(cap {cap})")):
        await execute(store, IsolateHost(target="WS9"))
    # The retry of an isolation already counted is not counted against itself: it finds its
    # own finished entry and answers from it.
    await execute(store, done[0])
    refused = [e for e in await store.audit_entries(INCIDENT) if "refused" in e.type]
    assert [e.target for e in refused] == ["WS9"]


@pytest.mark.parametrize(
    "action",
    [
        IsolateHost(target="WS1"),
        DisableAccount(target="CORP\\user1"),
        BlockIp(target="203.0.113.9"),
    ],
)
async def test_what_the_deployment_allows_without_a_human_reaches_the_vendor(
    store: Store, action: Action
) -> None:
    with pytest.raises(VendorReached):
        await execute(store, action)
