"""LD2 at CI scale: backpressure while no worker takes the incidents, then the drain.

A real `garrison server` whose dispatcher is paused (`GARRISON_INGEST__DISPATCH_PAUSED`: alerts
are committed, no workflow starts) with a bound of 200 alerts waiting (`MAX_BACKLOG`), and no
worker. One sender sends 40 hosts' alerts, a host's ten per request, until the first 429. Then a
worker starts (its dispatcher is not paused): the backlog drains, the server accepts again, and
the sender sends what was refused, waiting out every 429's Retry-After, plus five requests it had
already sent (exact duplicates). What must hold (security-scenarios.md LD2): the server accepted
up to the bound and then answered 429 with a Retry-After, to every request, until the drain; no
5xx; one incident per host (nothing the backlog held became two incidents); every acknowledged
alert stored once; and `verify_run()`.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from orchestrator.composition import open_store
from orchestrator.policy.model import load_policy
from orchestrator.settings import GarrisonSettings
from tests.scenarios.alerts import AlertJson, host_bursts, host_name, user_name
from tests.scenarios.backends import synthetic_world
from tests.scenarios.load import Acks, send
from tests.scenarios.oracle import RunEvidence, verify_run, wait_settled
from tests.scenarios.stack import StackConfig, approving_desk, deciding, scenario_stack

pytestmark = [pytest.mark.temporal, pytest.mark.slow]

HOSTS = 40
PER_HOST = 10
MAX_BACKLOG = 200
OVERSHOOT = 5 * PER_HOST  # requests in flight while the server counts its backlog
SETTLE_S = 240.0


def by_host(alerts: list[AlertJson]) -> list[list[AlertJson]]:
    """One request per host, hosts in order."""
    hosts: dict[object, list[AlertJson]] = {}
    for alert in alerts:
        entities = alert["entities"]
        assert isinstance(entities, dict)
        hosts.setdefault(entities["host"], []).append(alert)
    return list(hosts.values())


async def test_ld2_a_full_backlog_answers_429_then_drains_without_loss_or_duplicates(
    temporal_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    scope = f"ld2_{uuid.uuid4().hex[:8]}"
    world = synthetic_world(
        [host_name(i) for i in range(HOSTS)], [user_name(i) for i in range(HOSTS)]
    )
    config = StackConfig(
        folder=tmp_path,
        temporal_address=temporal_env.client.service_client.config.target_host,
        scope=scope,
        world=world,
        server_env={
            "GARRISON_INGEST__DISPATCH_PAUSED": "true",
            "GARRISON_INGEST__MAX_BACKLOG": str(MAX_BACKLOG),
        },
    )
    start = datetime.now(UTC) - timedelta(minutes=30)
    requests = by_host(host_bursts(range(HOSTS), PER_HOST, start, spacing_s=20.0, tag=scope))
    async with scenario_stack(config) as stack:
        url, token = stack.base_url, stack.tokens.sender
        before = await send(url, token, requests, concurrency=1, on_429="stop")
        refused = before.refused_batches
        probes = Acks()
        for batch in refused[:3]:  # each on its own: every one is refused
            probes.merge(await send(url, token, [batch], concurrency=1, on_429="stop"))

        await stack.start_worker("worker")
        async with deciding(approving_desk(stack)) as desk:
            after = await send(url, token, refused + requests[:5], concurrency=2, on_429="retry")
            await wait_settled(stack.settings(), scope, SETTLE_S, pending_counts=False)
        acks = Acks()
        for part in (before, probes, after):
            acks.merge(part)
        evidence = RunEvidence(
            settings=stack.settings(),
            scope=scope,
            journal_dir=stack.journal_dir,
            temporal=temporal_env.client,
            threshold=load_policy(stack.policy_file).threshold,
            acknowledged=acks.uids,
        )
        report = await verify_run(evidence)
        hosts_of = await incident_hosts(stack.settings(), scope)
        tracebacks = stack.tracebacks()

    accepted_first = before.new
    assert MAX_BACKLOG <= accepted_first <= MAX_BACKLOG + OVERSHOOT, before.statuses
    assert before.statuses[429] == 1 and refused, before.statuses
    assert probes.statuses == {429: 3}, probes.statuses  # refused until the drain, every time
    assert all(value.isdigit() and int(value) >= 1 for value in acks.retry_after), acks.retry_after
    assert acks.server_errors == 0 and not acks.failures, (acks.statuses, acks.failures[:3])
    assert acks.new == HOSTS * PER_HOST == report.alerts_stored
    assert after.duplicates == 5 * PER_HOST
    # One incident per host: the backlog became no second incident of any host.
    assert sorted(h for hosts in hosts_of.values() for h in hosts) == sorted(
        host_name(i) for i in range(HOSTS)
    ), hosts_of
    assert report.incidents == report.workflows == report.closed == HOSTS, report.summary()
    # The hosts' alerts look malicious: isolations were requested, approved over the API, done.
    assert report.approvals["approved"] == len(desk.handled) > 0 and not desk.problems
    assert report.actions_executed >= report.approvals["approved"]
    assert tracebacks == {"server": 0, "worker": 0}, tracebacks


async def incident_hosts(settings: GarrisonSettings, scope: str) -> dict[str, set[str]]:
    """Each incident of the run and the hosts its stored alerts name."""
    store = await open_store(settings)
    try:
        incidents = [
            i for i in await store.list_incidents(limit=100_000) if i.id.startswith(f"{scope}-")
        ]
        return {
            i.id: {str(a.entities.host) for a in await store.alerts_for(i.id)} for i in incidents
        }
    finally:
        await store.close()
