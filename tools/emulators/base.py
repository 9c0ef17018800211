"""What every vendor emulator shares: fault knobs, a ledger of the requests it received and of the
effective transitions its handlers applied, and the ways a real vendor misbehaves (an outage, 5xx,
429 with Retry-After, latency, applying a change and then dropping the connection or never
answering, answering a search late).

An emulator is a FastAPI app holding real state; tests serve it on loopback with `serve` and point
the real vendor adapter at it. `control.ControlPlane` shows the ledger and turns the knobs over
HTTP while it runs (`garrison emulate`).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import hashlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send


class EmulatorFaults(BaseModel):
    """Knobs a test (or `garrison emulate --fault`, or `PUT /_faults`) turns. Counters are
    consumed as requests arrive; `ops` name the emulator's operations (its handlers' names), `*`
    every one of them."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    down: bool = Field(default=False, description="every request gets a 503 until lifted")
    fail_5xx: int = Field(default=0, ge=0, description="the next N requests get a 503")
    rate_limit_429: int = Field(default=0, ge=0, description="the next N requests get a 429")
    retry_after_s: int = Field(default=1, ge=0)
    latency_ms: int = Field(default=0, ge=0)
    reset_after_apply: set[str] = Field(
        default_factory=set, description="ops that apply their change, then drop the connection"
    )
    hang_after_apply: set[str] = Field(
        default_factory=set, description="ops that apply their change and never answer"
    )
    already_in_state_error: bool = Field(
        default=False, description="answer 'already in that state' as the vendor's error"
    )
    search_lag_s: float = Field(default=0.0, ge=0, description="new records searchable late")

    @classmethod
    def parse(cls, spec: str) -> EmulatorFaults:
        """`fail_5xx=2;rate_limit_429=1;retry_after_s=2;reset_after_apply=contain,create_issue`;
        a flag alone (`down`) is `down=true`. ValueError, one line naming the knob, otherwise."""
        values: dict[str, object] = {}
        for part in filter(None, (p.strip() for p in spec.split(";"))):
            name, sep, value = part.partition("=")
            name = name.strip()
            if name not in cls.model_fields:
                raise ValueError(f"emulator faults: unknown knob {name!r}; knobs: {KNOBS}")
            if name in _SETS:
                values[name] = {v.strip() for v in value.split(",") if v.strip()}
            elif name in _FLAGS:
                values[name] = not sep or value.strip().lower() in ("1", "true", "yes", "on")
            elif not sep:
                raise ValueError(f"emulator faults: {part!r} is not <knob>=<value>")
            else:
                values[name] = value.strip()
        return cls.checked(values)

    @classmethod
    def checked(cls, values: dict[str, object]) -> EmulatorFaults:
        """Validate knob values; ValueError in one line naming each bad knob."""
        try:
            return cls.model_validate(values)
        except ValidationError as error:
            raise ValueError(f"emulator faults: {_describe(error)}") from None

    def update(self, values: dict[str, object]) -> None:
        """Set some knobs in place (handlers hold this object), all or none."""
        merged = self.checked({**self.model_dump(), **values})
        for name in values:
            setattr(self, name, getattr(merged, name))


_SETS = ("reset_after_apply", "hang_after_apply")
_FLAGS = ("down", "already_in_state_error")
KNOBS = ", ".join(EmulatorFaults.model_fields)


def _describe(error: ValidationError) -> str:
    problems = []
    for detail in error.errors(include_url=False, include_input=False):
        where = ".".join(str(part) for part in detail["loc"]) or "faults"
        if detail["type"] == "extra_forbidden":
            problems.append(f"unknown knob {where!r}; knobs: {KNOBS}")
        else:
            problems.append(f"{where}: {detail['msg']}")
    return "; ".join(problems)


@dataclass(frozen=True)
class LedgerEntry:
    at: datetime
    method: str
    path: str
    body: bytes
    status: int  # 0: no answer was sent (the vendor hung, or the server stopped first)
    seq: int = 0  # in order of arrival, from 1
    dropped: bool = False  # the answer began, then the connection was dropped (reset_after_apply)

    @property
    def answer(self) -> str:
        """`503`, or `dropped`, or `unanswered`: how the client saw it."""
        if self.dropped:
            return "dropped"
        return str(self.status) if self.status else "unanswered"


@dataclass(frozen=True)
class Transition:
    """One effective change of the vendor's state, as the handler that applied it names it."""

    at: datetime
    op: str  # the handler's operation, as the `*_after_apply` knobs name it
    target: str  # what it changed: a device id, an issue key, an address object
    request: int  # the seq of the request that applied it; 0 outside a request


def digest(content: object) -> str:
    """A short fingerprint of what a transition wrote (a comment's body): the ledger tells a
    comment posted twice from two comments."""
    text = json.dumps(content, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


@dataclass(frozen=True)
class _Arrival:
    seq: int


_CURRENT: contextvars.ContextVar[_Arrival | None] = contextvars.ContextVar(
    "garrison_emulator_request", default=None
)


@dataclass
class EmulatorState:
    """Shared by every emulator: faults, the request ledger and the transitions applied."""

    faults: EmulatorFaults = field(default_factory=EmulatorFaults)
    ledger: list[LedgerEntry] = field(default_factory=list)
    transitions: list[Transition] = field(default_factory=list)
    state_changes: int = 0  # effective transitions, counted by the emulator's handlers
    arrivals: int = 0  # requests received so far (the ledger lists those answered)

    def changed(self, op: str = "", target: str = "") -> None:
        """Called by a handler for each effective transition it applied (not for a no-op)."""
        self.state_changes += 1
        arrival = _CURRENT.get()
        self.transitions.append(
            Transition(datetime.now(UTC), op, target, 0 if arrival is None else arrival.seq)
        )


class FaultMiddleware:
    """Applies the generic faults before the app sees a request, and records every request."""

    def __init__(
        self, app: Callable[[Scope, Receive, Send], Awaitable[None]], state: EmulatorState
    ):
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)

        async def replay() -> dict[str, object]:
            return {"type": "http.request", "body": body, "more_body": False}

        faults = self.state.faults
        self.state.arrivals += 1
        seq = self.state.arrivals
        arrival = _CURRENT.set(_Arrival(seq))
        status_holder = {"status": 0}

        async def recording_send(message: dict[str, object]) -> None:
            if message["type"] == "http.response.start":
                status_holder["status"] = int(message["status"])  # type: ignore[arg-type]
            await send(message)  # type: ignore[arg-type]

        dropped = False
        try:
            if faults.latency_ms:
                await asyncio.sleep(faults.latency_ms / 1000)
            response = _fault_response(faults)
            if response is not None:
                await response(scope, replay, recording_send)  # type: ignore[arg-type]
            else:
                await self.app(scope, replay, recording_send)  # type: ignore[arg-type]
        except DroppedConnection:
            dropped = True
            raise
        finally:
            self.state.ledger.append(
                LedgerEntry(
                    at=datetime.now(UTC),
                    method=scope["method"],
                    path=scope["path"],
                    body=body,
                    status=status_holder["status"],
                    seq=seq,
                    dropped=dropped,
                )
            )
            # A request held open (`hang_after_apply`) is closed by the server's shutdown from
            # another context, where the token cannot be reset; that context ends with it anyway.
            with contextlib.suppress(ValueError):
                _CURRENT.reset(arrival)


def _fault_response(faults: EmulatorFaults) -> Response | None:
    """The answer the generic faults give instead of the vendor's, consuming a counter."""
    if faults.down:
        return JSONResponse({"error": "emulated outage (down)"}, status_code=503)
    if faults.fail_5xx:
        faults.fail_5xx -= 1
        return JSONResponse({"error": "emulated outage"}, status_code=503)
    if faults.rate_limit_429:
        faults.rate_limit_429 -= 1
        return JSONResponse(
            {"error": "rate limited"},
            status_code=429,
            headers={"Retry-After": str(faults.retry_after_s)},
        )
    return None


class DroppedConnection(Exception):
    """Raised mid-response by `DroppedResponse`: the server then closes the connection."""


class DroppedResponse(Response):
    """Starts a response it never finishes: the client sees the connection drop after the
    vendor applied the change (an ambiguous outcome, as when a response is lost on the wire)."""

    def __init__(self) -> None:
        super().__init__(content=b"", status_code=200)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-length", b"4096"), (b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": b'{"partial": ', "more_body": True})
        raise DroppedConnection("emulated connection drop after apply")


async def after_apply(state: EmulatorState, op: str) -> Response | None:
    """Call in a handler right after it applied a change, and return what it returns if not None:
    the fault knobs may make the vendor hang, or drop the connection, at that moment."""
    if _names(op, state.faults.hang_after_apply):
        await asyncio.Event().wait()
    if _names(op, state.faults.reset_after_apply):
        return DroppedResponse()
    return None


def _names(op: str, ops: set[str]) -> bool:
    return op in ops or "*" in ops
