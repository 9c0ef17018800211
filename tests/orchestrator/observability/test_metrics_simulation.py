"""`/metrics` scraped from a real server beside a simulation run in this process: the real vendor
adapters against their emulators (so every vendor call goes over HTTP) on the session's Temporal
dev server. What the metrics say agrees with what the scorecard says happened."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from temporalio.testing import WorkflowEnvironment

from orchestrator.approvals.directory import ApproverDirectory
from orchestrator.approvals.service import ApprovalService
from orchestrator.server.app import ServerDeps, create_app
from orchestrator.server.tokens import ApiTokens
from orchestrator.settings import GarrisonSettings, TemporalSettings
from orchestrator.store.repository import Store
from simulations.loader import load_all
from simulations.runner import SimulationOptions, run_simulation
from tools.emulators.serve import serve
from tools.vendors import DEFAULT_EMULATED, vendor

pytestmark = [pytest.mark.temporal, pytest.mark.simulation]

ROOT = Path(__file__).parents[3]
INCIDENT = ROOT / "simulations" / "incidents" / "otrf-lsass-procdump-acct01"
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def total(samples: Samples, name: str, **labels: str) -> float:
    want = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and want <= ls)


def delta(after: Samples, before: Samples, name: str, **labels: str) -> float:
    return total(after, name, **labels) - total(before, name, **labels)


def by_label(samples: Samples, name: str, label: str) -> Mapping[str, float]:
    found: dict[str, float] = {}
    for (n, labels), value in samples.items():
        if n == name:
            key = dict(labels).get(label, "")
            found[key] = found.get(key, 0.0) + value
    return found


async def test_metrics_agree_with_the_scorecard(
    temporal_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    prefix = f"m{uuid.uuid4().hex[:8]}"
    settings = GarrisonSettings(
        data_dir=tmp_path / "data",
        temporal=TemporalSettings(
            address=temporal_env.client.service_client.config.target_host,
            task_queue_prefix=prefix,
        ),
    )
    emulated = {capability: vendor(name) for capability, name in DEFAULT_EMULATED.items()}
    loaded = load_all([INCIDENT]).incidents
    settings.data_dir.mkdir(parents=True)
    store = await Store.open(settings.effective_database_url)
    deps = ServerDeps(
        store=store,
        approvals=ApprovalService(
            temporal_env.client, store, ApproverDirectory(groups={}), "garrison-agent"
        ),
        tokens=ApiTokens(),
    )
    try:
        async with serve(create_app(deps)) as url, httpx.AsyncClient(base_url=url) as http:
            first = await http.get("/metrics")
            assert first.headers["content-type"].startswith("text/plain; version=0.0.4")
            before = parse(first.text)
            card = await run_simulation(loaded, settings, SimulationOptions(emulated=emulated))
            after = parse((await http.get("/metrics")).text)
    finally:
        await deps.aclose()
        await store.close()

    executed = [a for incident in card.per_incident for a in incident.executed_actions]
    assert executed, "the incident must execute something for the comparison to mean anything"
    done = delta(after, before, "garrison_actions_total", result="executed") + delta(
        after, before, "garrison_actions_total", result="already_in_state"
    )
    assert done == len(executed)
    for action in {a.kind for a in executed}:
        ran = sum(1 for a in executed if a.kind == action)
        assert delta(after, before, "garrison_actions_total", kind=str(action)) == ran
    # The ledger (state, from the store) agrees, and nothing is left open or pending.
    assert total(after, "garrison_ledger_actions", status="succeeded") == len(executed)
    assert total(after, "garrison_incidents_open") == 0
    assert total(after, "garrison_approvals_pending") == 0
    assert total(after, "garrison_approval_oldest_pending_age_seconds") == 0

    contained = [i for i in card.per_incident if i.time_to_contain_s is not None]
    for stage in ("total", "agent", "approval_wait", "execution"):
        observed = delta(after, before, "garrison_time_to_contain_seconds_count", stage=stage)
        assert observed == len(contained), stage
    assert delta(after, before, "garrison_time_to_contain_seconds_sum", stage="total") == (
        pytest.approx(sum(i.time_to_contain_s or 0 for i in contained), abs=1.0)
    )

    alerts = sum(len(incident.spec.alerts) for incident in loaded)
    assert delta(after, before, "garrison_alerts_received_total", result="new") == alerts

    # Every vendor call went over HTTP and was counted, by vendor and status.
    calls = by_label(after, "garrison_vendor_calls_total", "vendor")
    earlier = by_label(before, "garrison_vendor_calls_total", "vendor")
    made = {v: n - earlier.get(v, 0) for v, n in calls.items() if n - earlier.get(v, 0) > 0}
    assert made, "no vendor call was counted"
    assert delta(after, before, "garrison_vendor_calls_total", status="500") == 0

    # Temporal's task latencies, from the SDK's metrics, on this run's queues.
    queue = f"{prefix}-triage"
    assert delta(after, before, "garrison_workflow_task_execution_seconds_count", task_queue=queue)
    assert delta(
        after, before, "garrison_activity_schedule_to_start_seconds_count", task_queue=queue
    )
