"""The control plane beside a vendor emulator's API, on the same port: `GET /_ledger` shows what
the vendor received and what it changed, `GET|PUT|DELETE /_faults` reads, changes and clears the
fault knobs while it runs. An operator rehearsing an outage (`garrison emulate`) sees the effects
of Garrison from outside and takes a vendor down and back without restarting anything.

The control plane sits outside the fault middleware: it answers while the vendor is `down`, and
its own requests are never in the ledger. No vendor API Garrison emulates has a path beginning
with `/_`.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from tools.emulators.base import EmulatorFaults, EmulatorState, LedgerEntry, Transition

LEDGER_PATH = "/_ledger"
FAULTS_PATH = "/_faults"
MAX_BODY = 64 * 1024  # a PUT of knobs is a few hundred bytes
BODY_EXCERPT = 2_000  # characters of each request body shown in the ledger
READS = frozenset({"GET", "HEAD", "OPTIONS"})


class ControlPlane:
    """ASGI wrapper: answers `/_ledger` and `/_faults`, hands everything else to the vendor."""

    def __init__(self, app: ASGIApp, state: EmulatorState, vendor: str) -> None:
        self.app = app
        self.state = state
        self.vendor = vendor

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] not in (LEDGER_PATH, FAULTS_PATH):
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        if scope["path"] == LEDGER_PATH:
            response = self._ledger(request)
        else:
            response = await self._faults(request)
        await response(scope, receive, send)

    def _ledger(self, request: Request) -> Response:
        if request.method != "GET":
            return _refuse(405, f"{LEDGER_PATH} answers GET only")
        try:
            since = int(request.query_params.get("since", "0"))
        except ValueError:
            return _refuse(400, "since: an integer (the last request seq already read)")
        writes = request.query_params.get("writes", "") in ("1", "true", "yes")
        return JSONResponse(ledger_json(self.state, self.vendor, since=since, writes=writes))

    async def _faults(self, request: Request) -> Response:
        faults = self.state.faults
        if request.method == "GET":
            return JSONResponse(faults_json(faults))
        if request.method == "DELETE":
            faults.update(EmulatorFaults().model_dump())
            return JSONResponse(faults_json(faults))
        if request.method != "PUT":
            return _refuse(405, f"{FAULTS_PATH} answers GET, PUT and DELETE")
        body = await _bounded_body(request)
        if body is None:
            return _refuse(413, f"a {FAULTS_PATH} body is at most {MAX_BODY} bytes")
        try:
            faults.update(_knobs(body))
        except ValueError as error:
            return _refuse(422, str(error))
        return JSONResponse(faults_json(faults))


def _knobs(body: bytes) -> dict[str, object]:
    """A JSON object of knobs, or the `--fault` syntax (`down;latency_ms=200`)."""
    text = body.decode("utf-8", errors="replace").strip()
    if not text.startswith(("{", "[", '"')):
        parsed = EmulatorFaults.parse(text)
        named = {part.partition("=")[0].strip() for part in text.split(";") if part.strip()}
        return {name: getattr(parsed, name) for name in named}
    try:
        values = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"body: not JSON ({error.msg} at column {error.colno})") from None
    if not isinstance(values, dict):
        raise ValueError('body: a JSON object of knobs, e.g. {"down": true}')
    return {str(name): value for name, value in values.items()}


async def _bounded_body(request: Request) -> bytes | None:
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY:
            return None
    return body


def _refuse(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def faults_json(faults: EmulatorFaults) -> dict[str, Any]:
    return faults.model_dump(mode="json")


def ledger_json(
    state: EmulatorState, vendor: str, *, since: int = 0, writes: bool = False
) -> dict[str, Any]:
    """Requests answered after seq `since` (with `writes`, only those not plain reads or that
    changed something), the transitions they applied, and counts over the whole run."""
    by_request: dict[int, list[Transition]] = {}
    for transition in state.transitions:
        by_request.setdefault(transition.request, []).append(transition)
    entries = sorted((e for e in state.ledger if e.seq > since), key=lambda e: e.seq)
    if writes:
        entries = [e for e in entries if e.method not in READS or e.seq in by_request]
    return {
        "vendor": vendor,
        "received": state.arrivals,
        "answers": dict(sorted(Counter(e.answer for e in state.ledger).items())),
        "state_changes": state.state_changes,
        "requests": [_request_json(e, by_request.get(e.seq, [])) for e in entries],
        "transitions": [
            _transition_json(t) for t in state.transitions if t.request == 0 or t.request > since
        ],
    }


def _request_json(entry: LedgerEntry, changes: list[Transition]) -> dict[str, Any]:
    body = entry.body.decode("utf-8", errors="replace")
    return {
        "seq": entry.seq,
        "at": entry.at.isoformat(),
        "method": entry.method,
        "path": entry.path,
        "status": entry.status,
        "answer": entry.answer,
        "body": body[:BODY_EXCERPT],
        "body_bytes": len(entry.body),
        "changes": [t.op for t in changes],
    }


def _transition_json(transition: Transition) -> dict[str, Any]:
    return {
        "at": transition.at.isoformat(),
        "op": transition.op,
        "target": transition.target,
        "request": transition.request,
    }
