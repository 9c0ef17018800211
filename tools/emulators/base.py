"""What every vendor emulator shares: fault knobs, a ledger of the requests it received, and the
ways a real vendor misbehaves (5xx, 429 with Retry-After, latency, applying a change and then
dropping the connection, answering a search late).

An emulator is a FastAPI app holding real state; tests serve it on loopback with `serve` and point
the real vendor adapter at it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send


class EmulatorFaults(BaseModel):
    """Knobs a test (or `garrison emulate --fault`) turns. Counters are consumed as requests
    arrive; `ops` name the emulator's operations (its handlers' names)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

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
        """`fail_5xx=2;rate_limit_429=1;retry_after_s=2;reset_after_apply=contain,create_issue`."""
        values: dict[str, object] = {}
        for part in filter(None, (p.strip() for p in spec.split(";"))):
            name, sep, value = part.partition("=")
            if not sep:
                raise ValueError(f"emulator faults: {part!r} is not <knob>=<value>")
            name = name.strip()
            if name not in cls.model_fields:
                raise ValueError(f"emulator faults: unknown knob {name!r}")
            if name in ("reset_after_apply", "hang_after_apply"):
                values[name] = {v.strip() for v in value.split(",") if v.strip()}
            elif name == "already_in_state_error":
                values[name] = value.strip().lower() in ("1", "true", "yes")
            else:
                values[name] = value.strip()
        return cls.model_validate(values)


@dataclass(frozen=True)
class LedgerEntry:
    at: datetime
    method: str
    path: str
    body: bytes
    status: int


@dataclass
class EmulatorState:
    """Shared by every emulator: faults and the request ledger."""

    faults: EmulatorFaults = field(default_factory=EmulatorFaults)
    ledger: list[LedgerEntry] = field(default_factory=list)
    state_changes: int = 0  # effective transitions, counted by the emulator's handlers

    def changed(self) -> None:
        self.state_changes += 1


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
        status_holder = {"status": 0}

        async def recording_send(message: dict[str, object]) -> None:
            if message["type"] == "http.response.start":
                status_holder["status"] = int(message["status"])  # type: ignore[arg-type]
            await send(message)  # type: ignore[arg-type]

        if faults.latency_ms:
            await asyncio.sleep(faults.latency_ms / 1000)
        response: Response | None = None
        if faults.fail_5xx:
            faults.fail_5xx -= 1
            response = JSONResponse({"error": "emulated outage"}, status_code=503)
        elif faults.rate_limit_429:
            faults.rate_limit_429 -= 1
            response = JSONResponse(
                {"error": "rate limited"},
                status_code=429,
                headers={"Retry-After": str(faults.retry_after_s)},
            )
        try:
            if response is not None:
                await response(scope, replay, recording_send)  # type: ignore[arg-type]
            else:
                await self.app(scope, replay, recording_send)  # type: ignore[arg-type]
        finally:
            self.state.ledger.append(
                LedgerEntry(
                    at=datetime.now(UTC),
                    method=scope["method"],
                    path=scope["path"],
                    body=body,
                    status=status_holder["status"],
                )
            )


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
    if op in state.faults.hang_after_apply:
        await asyncio.Event().wait()
    if op in state.faults.reset_after_apply:
        return DroppedResponse()
    return None
