"""Traces (the SDK's in-memory exporter): the HTTP API's requests are server spans named by their
route, the ticket and the card carry the incident's trace id, and tracing off (the default)
traces nothing. A replayed incident as one trace: `test_instrumented_run.py`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanContext, SpanKind
from temporalio.testing import ActivityEnvironment

from orchestrator.activities.records import RecordActivities
from orchestrator.approvals.directory import ApproverDirectory
from orchestrator.approvals.service import ApprovalService
from orchestrator.models import OpenTicketInput
from orchestrator.observability import tracing
from orchestrator.server.app import ServerDeps, create_app
from orchestrator.server.tokens import ApiTokens
from orchestrator.slack.card import approval_card
from orchestrator.store.repository import Store
from tests.slack.test_card import make_request
from tools.emulators.serve import serve
from tools.results import Ticket

ROOT = Path(__file__).parents[3]
INCIDENT = ROOT / "simulations" / "incidents" / "otrf-lsass-procdump-acct01"


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    spans = InMemorySpanExporter()
    tracing.enable(spans)
    try:
        yield spans
    finally:
        tracing.disable()


def ids(span: ReadableSpan) -> SpanContext:
    assert span.context is not None
    return span.context


def attributes(span: ReadableSpan) -> dict[str, object]:
    return dict(span.attributes or {})


async def test_api_requests_are_server_spans_continuing_the_callers_trace(
    tmp_path: Path, exporter: InMemorySpanExporter
) -> None:
    store = await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'g.db'}")
    deps = ServerDeps(
        store=store,
        approvals=ApprovalService(None, store, ApproverDirectory(groups={}), "a"),  # type: ignore[arg-type]
        tokens=ApiTokens(),
    )
    try:
        async with serve(create_app(deps)) as url, httpx.AsyncClient(base_url=url) as http:
            answer = await http.get("/healthz")  # httpx, instrumented, sends its traceparent
            await http.get("/api/approvals/<script>")  # refused (401): named by its route
    finally:
        await deps.aclose()
        await store.close()
    assert answer.status_code == 200
    spans = exporter.get_finished_spans()
    served = [s for s in spans if s.kind is SpanKind.SERVER]
    caller = next(s for s in spans if s.kind is SpanKind.CLIENT)
    assert [s.name for s in served] == ["GET /healthz", "GET /api/approvals/{approval_id}"]
    assert served[0].parent is not None and served[0].parent.span_id == ids(caller).span_id
    assert ids(served[0]).trace_id == ids(caller).trace_id
    assert attributes(served[0])["http.response.status_code"] == 200


def test_off_by_default_and_nothing_is_traced() -> None:
    assert not tracing.enabled()
    assert tracing.temporal_interceptors() == []
    with tracing.span("replay"):
        assert tracing.current_trace_id() is None


class _Ticketing:
    def __init__(self) -> None:
        self.descriptions: list[str] = []

    async def open_ticket(self, key: str, title: str, description: str) -> Ticket:
        self.descriptions.append(description)
        return Ticket(id="SEC-1", key=key, title=title)


class _Backends:
    def __init__(self) -> None:
        self.ticketing = _Ticketing()

    def response_tools(self, incident_id: str) -> Any:
        return SimpleNamespace(ticketing=self.ticketing)


async def test_the_ticket_and_the_card_name_the_incidents_trace(
    tmp_path: Path, exporter: InMemorySpanExporter
) -> None:
    store = await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'g.db'}")
    backends = _Backends()
    activities = RecordActivities(store, backends)  # type: ignore[arg-type]
    try:
        with tracing.span("replay"):
            trace = tracing.current_trace_id()
            await ActivityEnvironment().run(
                activities.open_ticket, OpenTicketInput(incident_id="inc-9", title="t")
            )
    finally:
        await store.close()
    assert trace is not None and len(trace) == 32
    assert backends.ticketing.descriptions[0].endswith(f"\nTrace: {trace}")

    card = approval_card(
        make_request(), approvers_needed="1 approver", rationale_from_model=False, trace_id=trace
    )
    assert card["blocks"][-1] == {
        "type": "context",
        "elements": [{"type": "plain_text", "text": f"Trace {trace}", "emoji": False}],
    }
    untraced = approval_card(make_request(), approvers_needed="1", rationale_from_model=False)
    assert all("Trace" not in json.dumps(b) for b in untraced["blocks"])
