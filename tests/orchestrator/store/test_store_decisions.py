"""The store's record of human decisions (claims) and the global isolation breaker's count, on
SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from orchestrator.policy.evaluate import DecisionOutcome, evaluate
from orchestrator.policy.model import TargetFacts, load_policy
from orchestrator.store.records import DecisionClaim
from orchestrator.store.repository import Store
from tools.actions import IsolateHost, TargetKind, business_key
from tools.models import AssetKind, Criticality

HOUR = timedelta(hours=1)


@pytest.fixture
async def decisions_store(db_url: str) -> AsyncIterator[Store]:
    store = await Store.open(db_url)
    if store.engine.dialect.name == "postgresql":
        async with store.engine.begin() as conn:
            await conn.execute(text("TRUNCATE decision_claims, isolation_slots"))
    yield store
    await store.close()


def claim(decision_id: str, user: str = "alice") -> DecisionClaim:
    return DecisionClaim(
        decision_id=decision_id,
        approval_id="apr-0123456789abcdef",
        incident_id="live-1",
        action_hash="a" * 64,
        user=user,
        groups=["soc-primary"],
        decision="approve",
        channel="api",
        at=datetime.now(UTC),
    )


async def test_a_claim_reads_back_as_recorded_and_is_never_overwritten(
    decisions_store: Store,
) -> None:
    decisions = decisions_store.decisions
    await decisions.record_claim(claim("d-1"))
    await decisions.record_claim(claim("d-1", user="mallory"))  # same id: the first one stands
    found = await decisions.claim("d-1")
    assert found is not None and found.user == "alice" and found.groups == ["soc-primary"]
    assert await decisions.claim("d-unknown") is None
    assert [c.decision_id for c in await decisions.claims_for("apr-0123456789abcdef")] == ["d-1"]


async def test_300_isolations_across_incidents_trip_the_breaker_at_its_limit(
    decisions_store: Store,
) -> None:
    """Scenario L3: 300 isolations requested at once by 300 incidents share one count; the
    first ten (the default policy's limit) are decided on their risk, the other 290 need two
    approvers. A retried request keeps its slot."""
    policy = load_policy(None)
    limit = policy.breaker.max_isolations
    assert limit == 10
    decisions = decisions_store.decisions
    now = datetime.now(UTC)
    actions = [IsolateHost(target=f"WS{n:03d}") for n in range(300)]
    keys = [business_key(f"live-{n}", action) for n, action in enumerate(actions)]

    async def reserve(key: str) -> int:
        return await decisions.reserve_isolation(key, "deployment", now, HOUR)

    positions = await asyncio.gather(*(reserve(key) for key in keys))
    assert sorted(positions) == list(range(1, 301))
    assert await reserve(keys[0]) == positions[0]  # a retry keeps its place
    # Another scope (a simulation's recording) has its own count.
    assert await decisions.reserve_isolation("sim:x:isolate_host:ws1", "sim:x", now, HOUR) == 1

    workstation = TargetFacts(
        target_kind=TargetKind.ASSET,
        asset_kind=AssetKind.WORKSTATION,
        criticality=Criticality.MEDIUM,
        known_entity=True,
    )
    decided = [
        evaluate(policy, action, workstation, 0.9, 0, position)
        for action, position in zip(actions, positions, strict=True)
    ]
    allowed = [d for d in decided if d.outcome is DecisionOutcome.ALLOW]
    gated = [d for d in decided if d.outcome is DecisionOutcome.NEEDS_APPROVAL]
    assert len(allowed) == limit and len(gated) == 300 - limit
    assert all(d.required_approvers == 2 and d.tier == "critical" for d in gated)


async def test_isolations_outside_the_window_no_longer_count(decisions_store: Store) -> None:
    decisions = decisions_store.decisions
    start = datetime.now(UTC) - timedelta(hours=3)
    for n in range(5):
        await decisions.reserve_isolation(f"old-{n}", "deployment", start, HOUR)
    later = start + HOUR + timedelta(seconds=1)
    assert await decisions.reserve_isolation("new-0", "deployment", later, HOUR) == 1
