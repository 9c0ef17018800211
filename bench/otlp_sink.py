"""An OTLP/HTTP trace sink on loopback that checks what a traced run sent: every vendor call
(an HTTP client span) made inside an incident belongs to a trace whose root is the incident's
replay (or API) span, through exported parents only.

    .venv/bin/python -m bench.otlp_sink --port 4318 --out .garrison/traces.json &
    GARRISON_OTLP_ENDPOINT=http://127.0.0.1:4318 .venv/bin/garrison simulate \\
        simulations/incidents --backends emulated --no-keep
    kill %1   # the sink writes its summary on SIGTERM (and prints it)

The summary counts traces, spans, root names, vendor calls, and the vendor calls whose chain of
parents does not reach a root span (`orphans`, with the first few names): zero is the claim.
A root span without an incident (the scorer reading tickets back after the run) is counted apart.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from threading import Lock
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
)
from opentelemetry.proto.trace.v1.trace_pb2 import Span

CLIENT = Span.SpanKind.SPAN_KIND_CLIENT


class Spans:
    def __init__(self) -> None:
        self.lock = Lock()
        self.by_id: dict[bytes, Span] = {}

    def add(self, body: bytes) -> None:
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        with self.lock:
            for resource in request.resource_spans:
                for scope in resource.scope_spans:
                    for span in scope.spans:
                        self.by_id[span.span_id] = span

    def summary(self) -> dict[str, Any]:
        spans = list(self.by_id.values())
        roots = [s for s in spans if not s.parent_span_id]
        root_of_trace = {s.trace_id: s.name for s in roots}
        calls = [s for s in spans if s.kind == CLIENT and _url(s)]
        inside = [c for c in calls if c.parent_span_id]
        orphans = [c for c in inside if not self._reaches_root(c)]
        return {
            "spans": len(spans),
            "traces": len({s.trace_id for s in spans}),
            "roots": dict(Counter(s.name for s in roots)),
            "vendor_calls": len(calls),
            "vendor_calls_in_an_incident_trace": len(inside),
            "vendor_calls_without_a_parent": len(calls) - len(inside),
            "orphans": len(orphans),
            "orphan_examples": [f"{c.name} {_url(c)}" for c in orphans[:5]],
            "vendor_call_roots": dict(
                Counter(root_of_trace.get(c.trace_id, "(root not exported)") for c in inside)
            ),
        }

    def _reaches_root(self, span: Span) -> bool:
        seen = 0
        while span.parent_span_id:
            parent = self.by_id.get(span.parent_span_id)
            if parent is None or seen > 1_000:
                return False
            span, seen = parent, seen + 1
        return True


def _url(span: Span) -> str:
    for attribute in span.attributes:
        if attribute.key in ("http.url", "url.full"):
            return attribute.value.string_value
    return ""


def main() -> None:
    parser = argparse.ArgumentParser(description="OTLP/HTTP trace sink that checks a traced run")
    parser.add_argument("--port", type=int, default=4318)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    spans = Spans()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            if self.path.rstrip("/") == "/v1/traces":
                spans.add(body)
            self.send_response(200)
            self.send_header("content-type", "application/x-protobuf")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)

    def finish(*_: object) -> None:
        text = json.dumps(spans.summary(), indent=2)
        print(text, flush=True)
        if args.out is not None:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(text + "\n", encoding="utf-8")
        sys.exit(0)

    signal.signal(signal.SIGTERM, finish)
    signal.signal(signal.SIGINT, finish)
    server.serve_forever()


if __name__ == "__main__":
    main()
