"""What the instruments say about one simulated incident (`instrumented.py`, run once for the
module) agrees with what happened: `/metrics` with the scorecard, the logs hold no secret and
name the incident, and the traces connect the replay to every vendor call."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanContext, SpanKind
from prometheus_client.parser import text_string_to_metric_families
from temporalio.testing import WorkflowEnvironment

from tests.orchestrator.observability.instrumented import InstrumentedRun, instrumented_run

pytestmark = [pytest.mark.temporal, pytest.mark.simulation]
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture(scope="module")
async def run(
    temporal_env: WorkflowEnvironment, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[InstrumentedRun]:
    done = await instrumented_run(temporal_env, tmp_path_factory.mktemp("instrumented"))
    assert done.card.per_incident[0].executed_actions, "the incident must act on its vendors"
    yield done


# ---- metrics -----------------------------------------------------------------------------------


def parse(text: str) -> Samples:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def total(samples: Samples, name: str, **labels: str) -> float:
    want = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and want <= ls)


def by_label(samples: Samples, name: str, label: str) -> Mapping[str, float]:
    found: dict[str, float] = {}
    for (n, labels), value in samples.items():
        if n == name:
            key = dict(labels).get(label, "")
            found[key] = found.get(key, 0.0) + value
    return found


def test_metrics_agree_with_the_scorecard(run: InstrumentedRun) -> None:
    before, after = parse(run.metrics_before), parse(run.metrics_after)

    def delta(name: str, **labels: str) -> float:
        return total(after, name, **labels) - total(before, name, **labels)

    executed = [a for incident in run.card.per_incident for a in incident.executed_actions]
    done = delta("garrison_actions_total", result="executed")
    assert done + delta("garrison_actions_total", result="already_in_state") == len(executed)
    for kind in {a.kind for a in executed}:
        ran = sum(1 for a in executed if a.kind == kind)
        assert delta("garrison_actions_total", kind=str(kind)) == ran
    # The ledger (state, from the store) agrees, and nothing is left open or pending.
    assert total(after, "garrison_ledger_actions", status="succeeded") == len(executed)
    assert total(after, "garrison_incidents_open") == 0
    assert total(after, "garrison_approvals_pending") == 0
    assert total(after, "garrison_approval_oldest_pending_age_seconds") == 0

    contained = [i for i in run.card.per_incident if i.time_to_contain_s is not None]
    for stage in ("total", "agent", "approval_wait", "execution"):
        assert delta("garrison_time_to_contain_seconds_count", stage=stage) == len(contained)
    assert delta("garrison_time_to_contain_seconds_sum", stage="total") == pytest.approx(
        sum(i.time_to_contain_s or 0 for i in contained), abs=1.0
    )
    alerts = sum(len(incident.spec.alerts) for incident in run.loaded)
    assert delta("garrison_alerts_received_total", result="new") == alerts

    # Every vendor call went over HTTP and was counted, by vendor and status.
    calls = by_label(after, "garrison_vendor_calls_total", "vendor")
    earlier = by_label(before, "garrison_vendor_calls_total", "vendor")
    assert any(n > earlier.get(v, 0) for v, n in calls.items()), "no vendor call was counted"
    assert delta("garrison_vendor_calls_total", status="500") == 0

    # Temporal's task latencies, from the SDK's metrics, on this run's queues.
    triage = f"{run.prefix}-triage"
    assert delta("garrison_workflow_task_execution_seconds_count", task_queue=triage)
    assert delta("garrison_activity_schedule_to_start_seconds_count", task_queue=triage)


# ---- logs --------------------------------------------------------------------------------------


def test_no_secret_in_any_log_line_and_lines_name_their_incident(run: InstrumentedRun) -> None:
    assert len(run.log_lines) > 100, "DEBUG logging captured too little to mean anything"
    assert len(run.secrets) > 2
    entries = [json.loads(line) for line in run.log_lines]  # every line is one JSON object
    leaked = [(s, line) for line in run.log_lines for s in run.secrets if s in line]
    assert leaked == []
    assert entries[-1]["message"] == "slack: [redacted]"
    with_incident = [e for e in entries if e.get("incident_id")]
    assert with_incident and all("workflow_id" in e for e in with_incident)
    replay = next(s for s in run.spans if s.name == "replay")
    assert any(e.get("trace_id") == f"{ids(replay).trace_id:032x}" for e in with_incident)


# ---- traces ------------------------------------------------------------------------------------


def ids(span: ReadableSpan) -> SpanContext:
    assert span.context is not None
    return span.context


def attributes(span: ReadableSpan) -> dict[str, object]:
    return dict(span.attributes or {})


def chain_to_root(span: ReadableSpan, by_id: dict[int, ReadableSpan]) -> list[str]:
    names = [span.name]
    while span.parent is not None:
        parent = by_id.get(span.parent.span_id)
        assert parent is not None, f"{names}: parent {span.parent.span_id:x} was not exported"
        span = parent
        names.append(span.name)
    return names


def test_the_replay_is_one_trace_down_to_each_vendor_call(run: InstrumentedRun) -> None:
    spans = run.spans
    by_id = {ids(s).span_id: s for s in spans}
    roots = [s for s in spans if s.name == "replay"]
    assert len(roots) == 1
    trace_id = ids(roots[0]).trace_id
    vendor_calls = [
        s
        for s in spans
        if s.kind is SpanKind.CLIENT
        and "http.url" in attributes(s)
        and not str(attributes(s)["http.url"]).endswith("/metrics")  # the test's scrapes
    ]
    # The scorer reads the ticket back from the emulator after the run, outside any incident:
    # those reads are traces of their own; every call the incident made is in its trace.
    scorer_reads = [c for c in vendor_calls if c.parent is None]
    assert all(c.name == "GET" and "/issue/" in str(attributes(c)) for c in scorer_reads)
    incident_calls = [c for c in vendor_calls if c.parent is not None]
    assert len(incident_calls) > len(scorer_reads)
    for call in incident_calls:
        assert ids(call).trace_id == trace_id
        assert chain_to_root(call, by_id)[-1] == "replay"
    names = {s.name for s in spans if ids(s).trace_id == trace_id}
    for expected in (
        "deliver",
        "RunWorkflow:IncidentWorkflow",
        "RunActivity:agents.triage",
        "RunActivity:response.execute",
    ):
        assert expected in names, sorted(names)
    assert any(n.startswith("agent node ") for n in names), sorted(names)
    executed = [s for s in spans if s.name == "RunActivity:response.execute"]
    assert any(
        c.parent is not None and c.parent.span_id == ids(e).span_id
        for e in executed
        for c in incident_calls
    ), "the containment's vendor call is not a child of response.execute"
