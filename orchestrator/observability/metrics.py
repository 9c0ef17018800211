"""Garrison's Prometheus metrics (`prometheus-client`), documented in docs/operators.md.

Two kinds, kept in two registries:

- `REGISTRY`: what this process counts as it works (alerts in and refused, actions executed,
  vendor calls and the rate budget's waits, time to contain, Temporal's task latencies). The
  server answers it on `/metrics`; a `garrison worker` serves it on `GARRISON_METRICS_PORT`.
- `STORE_REGISTRY`: state the store holds (open incidents, pending approvals and their age, the
  action ledger, the agents' model use by role), refreshed from the store when `/metrics` is
  scraped (`refresh_from_store`): the same whichever server answers, so it is only on the
  server's `/metrics`.

Temporal's own task latencies come from the SDK's metrics: processes connect their client with
`temporal_runtime()`, whose buffer `TemporalCollector` drains into histograms on every scrape
(and `drain_periodically` in between, so the buffer never fills).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from functools import cache
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import Metric
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from temporalio.runtime import MetricBuffer, Runtime

    from orchestrator.models import ExecutedActionView
    from orchestrator.store.repository import Store
    from tools.http import VendorCall

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
REGISTRY = CollectorRegistry()
STORE_REGISTRY = CollectorRegistry()
_SECONDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
_CONTAIN = (1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 4 * 3600, 24 * 3600)

ALERTS_RECEIVED = Counter(
    "garrison_alerts_received",
    "Alerts ingestion committed: new ones, and duplicates of alerts already stored.",
    ["result"],
    registry=REGISTRY,
)
ALERTS_REFUSED = Counter(
    "garrison_alerts_refused",
    "Alert deliveries or records refused, by reason.",
    ["reason"],
    registry=REGISTRY,
)
ALERT_DELIVERIES = Counter(
    "garrison_alert_deliveries",
    "Deliveries of committed alerts to their incidents' workflows by this process's dispatcher:"
    " `start` (signal-with-start of a new workflow) or `signal` (a running one).",
    ["kind"],
    registry=REGISTRY,
)
ACTIONS = Counter(
    "garrison_actions",
    "Response actions ended by this process's `response.execute`, by kind and result.",
    ["kind", "result"],
    registry=REGISTRY,
)
VENDOR_CALLS = Counter(
    "garrison_vendor_calls",
    "Vendor API calls, by vendor and HTTP status (or timeout, transport_error).",
    ["vendor", "status"],
    registry=REGISTRY,
)
VENDOR_CALL_SECONDS = Histogram(
    "garrison_vendor_call_seconds",
    "Vendor API call durations, the rate budget's wait excluded.",
    ["vendor"],
    buckets=_SECONDS,
    registry=REGISTRY,
)
VENDOR_BUDGET_WAIT = Histogram(
    "garrison_vendor_budget_wait_seconds",
    "Time a vendor call waited for its vendor's rate budget, by priority.",
    ["vendor", "priority"],
    buckets=_SECONDS,
    registry=REGISTRY,
)
TIME_TO_CONTAIN = Histogram(
    "garrison_time_to_contain_seconds",
    "From an incident's start to its first executed action: total, and its split into agent "
    "(the rest), approval_wait and execution.",
    ["stage"],
    buckets=_CONTAIN,
    registry=REGISTRY,
)
INCIDENTS_OPEN = Gauge(
    "garrison_incidents_open",
    "Incidents not closed, by phase (the store's status).",
    ["phase"],
    registry=STORE_REGISTRY,
)
APPROVALS_PENDING = Gauge(
    "garrison_approvals_pending", "Approval requests awaiting a decision.", registry=STORE_REGISTRY
)
APPROVAL_OLDEST_AGE = Gauge(
    "garrison_approval_oldest_pending_age_seconds",
    "Age of the oldest pending approval request (0: none).",
    registry=STORE_REGISTRY,
)
LEDGER_ACTIONS = Gauge(
    "garrison_ledger_actions",
    "Entries of the action ledger, by kind and status (the whole deployment's actions).",
    ["kind", "status"],
    registry=STORE_REGISTRY,
)

# The agents' model use, summed over the store's incidents (`model_usage`): the figures the
# scorecard and the console's incident pages show, whichever worker made the calls.
MODEL_CALLS = Gauge(
    "garrison_model_calls",
    "Calls to the agents' language model, by role, over every incident in the store.",
    ["role"],
    registry=STORE_REGISTRY,
)
MODEL_TOKENS = Gauge(
    "garrison_model_tokens",
    "Tokens the agents' language model was sent (input) and wrote (output), by role.",
    ["role", "direction"],
    registry=STORE_REGISTRY,
)
MODEL_COST = Gauge(
    "garrison_model_cost_usd",
    "What the agents' model calls cost at the configured prices (USD), by role.",
    ["role"],
    registry=STORE_REGISTRY,
)
MODEL_LATENCY = Gauge(
    "garrison_model_latency_seconds",
    "Seconds spent waiting on answered model calls, by role.",
    ["role"],
    registry=STORE_REGISTRY,
)


def exposition(*registries: CollectorRegistry) -> bytes:
    return b"".join(generate_latest(r) for r in registries)


async def refresh_from_store(store: Store) -> None:
    found = await store.gauges.read()
    INCIDENTS_OPEN.clear()
    for phase, count in found.incidents_open.items():
        INCIDENTS_OPEN.labels(phase).set(count)
    APPROVALS_PENDING.set(found.approvals_pending)
    since = found.oldest_pending_since
    APPROVAL_OLDEST_AGE.set(0 if since is None else (datetime.now(UTC) - since).total_seconds())
    LEDGER_ACTIONS.clear()
    for (kind, status), count in found.actions.items():
        LEDGER_ACTIONS.labels(kind, status).set(count)
    for gauge in (MODEL_CALLS, MODEL_TOKENS, MODEL_COST, MODEL_LATENCY):
        gauge.clear()
    for role, totals in (await store.model_use.totals_by_role()).items():
        MODEL_CALLS.labels(role).set(totals.calls)
        MODEL_TOKENS.labels(role, "input").set(totals.input_tokens)
        MODEL_TOKENS.labels(role, "output").set(totals.output_tokens)
        MODEL_COST.labels(role).set(totals.cost_usd)
        MODEL_LATENCY.labels(role).set(totals.latency_s)


def observe_vendor_call(call: VendorCall) -> None:
    """`tools.http`'s observer: every vendor call, whatever its outcome."""
    VENDOR_CALLS.labels(call.vendor, call.status).inc()
    VENDOR_CALL_SECONDS.labels(call.vendor).observe(call.seconds)
    if call.budget_wait_s is not None:
        VENDOR_BUDGET_WAIT.labels(call.vendor, call.priority).observe(call.budget_wait_s)


def observe_contained(started_at: datetime, first: ExecutedActionView) -> None:
    """An incident's first executed action, when it closes (workflow time): from the start to
    the action, split into the approval wait, the execution, and the rest (the agents)."""
    total = max(0.0, (first.at - started_at).total_seconds())
    TIME_TO_CONTAIN.labels("total").observe(total)
    TIME_TO_CONTAIN.labels("approval_wait").observe(first.approval_wait_s)
    TIME_TO_CONTAIN.labels("execution").observe(first.execution_s)
    agent = max(0.0, total - first.approval_wait_s - first.execution_s)
    TIME_TO_CONTAIN.labels("agent").observe(agent)


# ---- Temporal's task latencies, from the SDK's metric buffer ------------------------------------

# The SDK's histograms (milliseconds) kept, under Garrison's names in seconds, with their labels.
_TEMPORAL = {
    "temporal_workflow_task_schedule_to_start_latency": (
        "garrison_workflow_task_schedule_to_start_seconds",
        "Time workflow tasks waited on their queue for a worker.",
        ("task_queue",),
    ),
    "temporal_workflow_task_execution_latency": (
        "garrison_workflow_task_execution_seconds",
        "Time workers took to process a workflow task.",
        ("task_queue", "workflow_type"),
    ),
    "temporal_activity_schedule_to_start_latency": (
        "garrison_activity_schedule_to_start_seconds",
        "Time activity tasks waited on their queue for a worker.",
        ("task_queue",),  # the SDK does not name the activity here
    ),
    "temporal_activity_execution_latency": (
        "garrison_activity_execution_seconds",
        "Time activities ran, by type.",
        ("task_queue", "activity_type"),
    ),
}
_BUFFER_SIZE = 50_000
DRAIN_EVERY_S = 5.0


class TemporalCollector(Collector):
    """Drains the SDK's buffer into histograms on each collection, then yields them."""

    def __init__(self, buffer: MetricBuffer) -> None:
        self._buffer = buffer
        self._lock = threading.Lock()
        self.histograms = {
            sdk: Histogram(name, doc, list(labels), buckets=_SECONDS, registry=None)
            for sdk, (name, doc, labels) in _TEMPORAL.items()
        }

    def drain(self) -> None:
        with self._lock:
            for update in self._buffer.retrieve_updates():
                histogram = self.histograms.get(update.metric.name)
                if histogram is None:
                    continue
                labels = _TEMPORAL[update.metric.name][2]
                values = [str(update.attributes.get(k, "")) for k in labels]
                histogram.labels(*values).observe(float(update.value) / 1000.0)

    def collect(self) -> Iterator[Metric]:
        self.drain()
        for histogram in self.histograms.values():
            yield from histogram.collect()


@cache
def temporal_runtime() -> Runtime:
    """The process's Temporal runtime: the SDK's metrics into a buffer this module drains."""
    from temporalio.runtime import MetricBuffer, Runtime, TelemetryConfig

    buffer = MetricBuffer(_BUFFER_SIZE)
    runtime = Runtime(telemetry=TelemetryConfig(metrics=buffer))
    REGISTRY.register(_collector_of(buffer))
    return runtime


_collectors: list[TemporalCollector] = []


def _collector_of(buffer: MetricBuffer) -> TemporalCollector:
    collector = TemporalCollector(buffer)
    _collectors.append(collector)
    return collector


async def drain_periodically(interval_s: float = DRAIN_EVERY_S) -> None:
    """Keep the SDK's buffer from filling between scrapes (it drops updates when full)."""
    while True:
        await asyncio.sleep(interval_s)
        for collector in _collectors:
            collector.drain()


def serve_port(port: int, host: str = "0.0.0.0") -> None:  # noqa: S104 - scraped from outside
    """A worker process's own `/metrics`, this process's counters only (a thread of
    prometheus-client's HTTP server)."""
    from prometheus_client import start_http_server

    start_http_server(port, addr=host, registry=REGISTRY)
