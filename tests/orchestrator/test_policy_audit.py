"""A policy decision carried by the activity that acts on it (`policy-audit-folded-v1`) is audited
first and once per execution, however often that activity is retried
(`orchestrator/activities/policy_audit.py`)."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from orchestrator.activities.response import ResponseActivities
from orchestrator.models import ExecuteActionInput, PolicyRecord
from orchestrator.policy.evaluate import DecisionOutcome, PolicyDecision
from orchestrator.policy.model import TargetFacts, TargetKind
from orchestrator.store import Store
from tests.orchestrator.response_fakes import ACTION, INCIDENT, FirewallOnly, FlakyFirewall


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    store = await Store.open(f"sqlite:///{tmp_path / 'garrison.db'}")
    yield store
    await store.close()


def execution(activity_id: str, attempt: int) -> ActivityEnvironment:
    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, activity_id=activity_id, attempt=attempt)
    return env


def allowed() -> ExecuteActionInput:
    decision = PolicyDecision(
        outcome=DecisionOutcome.ALLOW,
        risk=20,
        factors=[],
        required_approvers=0,
        reasons=["low risk"],
        policy_version="p1",
    )
    facts = TargetFacts(target_kind=TargetKind.IP, known_entity=True)
    record = PolicyRecord(incident_id=INCIDENT, action=ACTION, decision=decision, facts=facts)
    return ExecuteActionInput(
        incident_id=INCIDENT, action=ACTION, risk=20, policy_version="p1", policy=record
    )


async def policy_entries(store: Store) -> list[str]:
    entries = await store.audit_entries(INCIDENT)
    return [str(e.detail["decided_in"]) for e in entries if e.type == "policy.allow"]


async def test_a_retried_execution_audits_its_decision_once_and_before_the_change(
    store: Store,
) -> None:
    firewall = FlakyFirewall(drops=1)
    activities = ResponseActivities(store, FirewallOnly(firewall))  # type: ignore[arg-type]
    with pytest.raises(ApplicationError):
        await execution("7", attempt=1).run(activities.execute, allowed())
    await execution("7", attempt=2).run(activities.execute, allowed())
    await execution("7", attempt=3).run(activities.execute, allowed())  # a lost answer, again

    assert len(await policy_entries(store)) == 1
    types = [e.type for e in await store.audit_entries(INCIDENT)]
    assert types.index("policy.allow") < types.index("response.block_ip.succeeded")


async def test_another_execution_of_the_same_decision_gets_its_own_entry(store: Store) -> None:
    activities = ResponseActivities(store, FirewallOnly(FlakyFirewall()))  # type: ignore[arg-type]
    await execution("7", attempt=1).run(activities.execute, allowed())
    await execution("12", attempt=2).run(activities.execute, allowed())  # first try died unwritten

    decided_in = await policy_entries(store)
    assert len(decided_in) == 2 and decided_in[0] != decided_in[1]


async def test_an_execution_without_a_carried_decision_audits_none(store: Store) -> None:
    activities = ResponseActivities(store, FirewallOnly(FlakyFirewall()))  # type: ignore[arg-type]
    plain = allowed().model_copy(update={"policy": None})
    await execution("7", attempt=1).run(activities.execute, plain)
    assert await policy_entries(store) == []
