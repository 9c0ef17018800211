"""LD2 at CI scale: backpressure while no worker takes the incidents, then the drain.

A real `garrison server` whose dispatcher is paused (`GARRISON_INGEST__DISPATCH_PAUSED`: alerts
are committed, no workflow starts) with a bound of 200 alerts waiting (`MAX_BACKLOG`), and no
worker. One sender sends 40 hosts' alerts, a host's ten per request, until the first 429. Then a
worker starts (its dispatcher is not paused): the backlog drains, the server accepts again, and
the sender sends what was refused, waiting out every 429's Retry-After, plus five requests it had
already sent (exact duplicates). What must hold (security-scenarios.md LD2): the server accepted
up to the bound and then answered 429 with a Retry-After, to every request, until the drain; no
5xx; one incident per host (nothing the backlog held became two incidents); every acknowledged
alert stored once; the global isolation breaker lets the first ten isolations run and holds the
other thirty for two approvers, who approve them over the API; and `verify_run()`.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from orchestrator.composition import open_store
from orchestrator.ingest.dispatch import Dispatcher
from orchestrator.ingest.pipeline import Ingestor
from orchestrator.ingest.sink import Backpressure
from orchestrator.models import IncidentWorkflowInput
from orchestrator.policy.model import IngestRules, load_policy
from orchestrator.settings import GarrisonSettings
from orchestrator.store.records import IncidentRecord
from orchestrator.store.repository import Store
from orchestrator.temporal.converter import DATA_CONVERTER
from tests.orchestrator.store.test_store_intake import alert
from tests.scenarios.alerts import AlertJson, host_bursts, host_name, user_name
from tests.scenarios.backends import synthetic_world
from tests.scenarios.load import Acks, send
from tests.scenarios.oracle import RunEvidence, verify_run
from tests.scenarios.settle import wait_settled
from tests.scenarios.stack import StackConfig, approving_desk, deciding, scenario_stack
from tests.simulations.live_stack import free_port

pytestmark = [pytest.mark.temporal, pytest.mark.slow]

HOSTS = 40
PER_HOST = 10
MAX_BACKLOG = 200
OVERSHOOT = 5 * PER_HOST  # requests in flight while the server counts its backlog
SETTLE_S = 240.0
BREAKER = 10  # isolations allowed deployment-wide before each further one needs two approvers


def by_host(alerts: list[AlertJson]) -> list[list[AlertJson]]:
    """One request per host, hosts in order."""
    hosts: dict[object, list[AlertJson]] = {}
    for record in alerts:
        entities = record["entities"]
        assert isinstance(entities, dict)
        hosts.setdefault(entities["host"], []).append(record)
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
        # The packaged breaker: forty hosts isolated within minutes is the wave it is for.
        policy={"breaker": {"max_isolations": BREAKER, "window_s": 3600}},
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
    # The hosts' alerts look malicious and each host's isolation scores under the threshold:
    # the first BREAKER run without a human, every later one trips the global breaker and runs
    # once two analysts approved it over the API.
    assert report.approvals["approved"] == len(desk.handled) == HOSTS - BREAKER, report.summary()
    assert not desk.problems, desk.problems
    assert report.actions_executed == HOSTS, report.summary()
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


async def test_ld2_a_dispatcher_that_cannot_reach_temporal_still_bounds_the_backlog(
    tmp_path: Path,
) -> None:
    """The other way alerts pile up: Temporal is gone, every pass fails, and each failure counts
    what waits, so ingestion refuses beyond the bound instead of taking alerts without end."""
    store = await Store.open(f"sqlite:///{tmp_path / 'g.db'}")
    nobody = await Client.connect(  # nothing listens there
        f"127.0.0.1:{free_port()}", lazy=True, data_converter=DATA_CONVERTER
    )
    dispatcher = Dispatcher(nobody, store, unreachable_input, "nowhere-triage", sweep_s=0.2)
    ingest = Ingestor(store, IngestRules(), on_commit=dispatcher.poke, max_backlog=5)
    counted = asyncio.Event()

    def on_backlog(backlog: int) -> None:
        ingest.backlog = backlog
        if backlog >= 6:
            counted.set()

    dispatcher.on_backlog = on_backlog
    running = asyncio.create_task(dispatcher.run())
    try:
        await ingest.accept([alert(f"a{i}", minutes=i) for i in range(6)], scope="t")
        await asyncio.wait_for(counted.wait(), timeout=60)  # after a failed pass
        with pytest.raises(Backpressure) as refused:
            await ingest.accept([alert("a7", minutes=7)], scope="t")
        assert refused.value.retry_after_s >= 1
        assert await store.intake.backlog() == 6  # nothing of the refused request was taken
    finally:
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running
        await ingest.aclose()
        await store.close()


def unreachable_input(incident: IncidentRecord) -> IncidentWorkflowInput:
    return IncidentWorkflowInput(
        incident_id=incident.id,
        group_key=incident.group_key,
        title=incident.title,
        policy=load_policy(None),
        requester="garrison-agent",
        task_queue_agents="nowhere-agents",
        task_queue_actions="nowhere-actions",
    )
