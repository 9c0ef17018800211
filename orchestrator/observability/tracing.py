"""OpenTelemetry traces, off unless an OTLP endpoint is configured (`GARRISON_OTLP_ENDPOINT`, or
the standard `OTEL_EXPORTER_OTLP_ENDPOINT`): off, nothing of OpenTelemetry is imported and no
interceptor, instrumentation or callback is installed, so tracing costs nothing.

On, one trace follows an incident from what started it to every vendor call:

- the HTTP API's requests (`TracingMiddleware`, continuing a caller's `traceparent`);
- the replay of a recorded incident (`span("replay ...")`);
- Temporal: the SDK's `TracingInterceptor` on the client, so starting or signalling a workflow,
  the workflow, and each activity it runs are spans, carried across processes in the
  workflow's and activities' headers;
- each LangGraph node the agents run (`AgentNodeSpans`, a LangChain callback installed around
  the agents' activities);
- each vendor call (httpx's instrumentation: every HTTP request the adapters send).

Spans leave in batches by OTLP over HTTP. Tests `enable(exporter)` with the SDK's in-memory one.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any
from uuid import UUID

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter
    from opentelemetry.trace import Span, Tracer
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

    from orchestrator.settings import GarrisonSettings

STANDARD_ENDPOINT = "OTEL_EXPORTER_OTLP_ENDPOINT"
TRACER = "garrison"
MAX_PATH = 200
_provider: TracerProvider | None = None


def enabled() -> bool:
    return _provider is not None


def configure(settings: GarrisonSettings) -> bool:
    """Turn tracing on when an OTLP endpoint is configured; True when on."""
    endpoint = settings.otlp_endpoint or os.environ.get(STANDARD_ENDPOINT)
    if not endpoint:
        return False
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    if settings.otlp_endpoint:  # a collector's base URL: the traces path is the standard one
        base = settings.otlp_endpoint.rstrip("/")
        exporter = OTLPSpanExporter(
            endpoint=base if base.endswith("/v1/traces") else f"{base}/v1/traces"
        )
    else:
        exporter = OTLPSpanExporter()  # the OTEL_EXPORTER_OTLP_* variables, as the SDK reads them
    enable(exporter, batch=True)
    return True


def enable(exporter: SpanExporter, *, batch: bool = False) -> TracerProvider:
    """Trace this process into `exporter` (batched, or each span as it ends)."""
    global _provider
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

    name = {} if os.environ.get("OTEL_SERVICE_NAME") else {"service.name": "garrison"}
    provider = TracerProvider(resource=Resource.create(name))
    processor = BatchSpanProcessor(exporter) if batch else SimpleSpanProcessor(exporter)
    provider.add_span_processor(processor)
    HTTPXClientInstrumentor().instrument(tracer_provider=provider)
    _provider = provider
    return provider


def disable() -> None:
    """Flush and stop: what a process does on its way out (and a test after itself)."""
    global _provider
    if _provider is None:
        return
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

    HTTPXClientInstrumentor().uninstrument()
    provider, _provider = _provider, None
    provider.shutdown()


def tracer() -> Tracer:
    assert _provider is not None, "tracing is off"
    return _provider.get_tracer(TRACER)


def temporal_interceptors() -> list[Any]:
    """The client's interceptors: the SDK's tracing one when tracing is on (it also intercepts
    the workers built on that client)."""
    if _provider is None:
        return []
    from temporalio.contrib.opentelemetry import TracingInterceptor

    return [TracingInterceptor(tracer())]


@contextlib.contextmanager
def span(name: str, **attributes: str) -> Iterator[None]:
    """A span around a block when tracing is on; nothing otherwise."""
    if _provider is None:
        yield
        return
    with tracer().start_as_current_span(name, attributes=attributes):
        yield


def current_trace_id() -> str | None:
    """The current trace's id (32 hex digits), or None with tracing off or no span."""
    if _provider is None:
        return None
    from opentelemetry import trace

    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else None


# ---- the HTTP API ------------------------------------------------------------------------------


class TracingMiddleware:
    """A server span per HTTP request, continuing the caller's `traceparent` if it sent one. Its
    name is the method and the matched route's template (`GET /api/approvals/{approval_id}`),
    never the raw path, which the caller chooses; the path is an attribute, cut short."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or _provider is None:
            await self.app(scope, receive, send)
            return
        from opentelemetry import propagate
        from opentelemetry.trace import SpanKind

        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        method = scope["method"]
        with tracer().start_as_current_span(
            method,
            context=propagate.extract(headers),
            kind=SpanKind.SERVER,
            attributes={"http.request.method": method, "url.path": scope["path"][:MAX_PATH]},
        ) as current:

            async def sending(message: Message) -> None:
                if message["type"] == "http.response.start":
                    current.set_attribute("http.response.status_code", message["status"])
                await send(message)

            try:
                await self.app(scope, receive, sending)
            finally:
                route = getattr(scope.get("route"), "path", None)  # set by the router on a match
                if isinstance(route, str):
                    current.update_name(f"{method} {route}")
                    current.set_attribute("http.route", route)


# ---- the agents' graph nodes -------------------------------------------------------------------

_node_spans: ContextVar[Any] = ContextVar("garrison_node_spans", default=None)


def agent_node_spans() -> contextlib.AbstractContextManager[None]:
    """Around an agents' activity: each LangGraph node it runs becomes a span (LangChain picks
    the handler up from the context, so the agents' code knows nothing of it)."""
    if _provider is None:
        return contextlib.nullcontext()
    return _installed_node_spans()


@contextlib.contextmanager
def _installed_node_spans() -> Iterator[None]:
    _register_hook()
    token = _node_spans.set(_handler_class()())
    try:
        yield
    finally:
        _node_spans.reset(token)


_hooked = False


def _register_hook() -> None:
    global _hooked
    if not _hooked:
        from langchain_core.tracers.context import register_configure_hook

        register_configure_hook(_node_spans, inheritable=True)
        _hooked = True


def _handler_class() -> type:
    from langchain_core.callbacks import BaseCallbackHandler
    from opentelemetry import context as otel_context
    from opentelemetry import trace

    class AgentNodeSpans(BaseCallbackHandler):
        """A span for each graph node (a chain LangGraph tags with `langgraph_node`), parented
        by the span current when the node started (the activity's)."""

        run_inline = True  # in the graph's own task: the current span is the activity's

        def __init__(self) -> None:
            self.spans: dict[UUID, Span] = {}

        def on_chain_start(
            self,
            serialized: dict[str, Any] | None,
            inputs: Any,
            *,
            run_id: UUID,
            metadata: dict[str, Any] | None = None,
            name: str | None = None,
            **kwargs: Any,
        ) -> None:
            node = (metadata or {}).get("langgraph_node")
            if node is None or name != node:
                return
            parent = trace.set_span_in_context(trace.get_current_span(), otel_context.get_current())
            self.spans[run_id] = tracer().start_span(
                f"agent node {node}", context=parent, attributes={"langgraph.node": str(node)}
            )

        def on_chain_end(self, outputs: Any, *, run_id: UUID, **kwargs: Any) -> None:
            found = self.spans.pop(run_id, None)
            if found is not None:
                found.end()

        def on_chain_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
            found = self.spans.pop(run_id, None)
            if found is not None:
                from opentelemetry.trace import Status, StatusCode

                # LangGraph's interrupt (a playbook waiting for its next round) is no failure.
                if type(error).__name__ not in ("GraphInterrupt", "NodeInterrupt"):
                    found.set_status(Status(StatusCode.ERROR, type(error).__name__))
                found.end()

    return AgentNodeSpans
