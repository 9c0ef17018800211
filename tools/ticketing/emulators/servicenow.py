"""An emulator of the ServiceNow Table API calls Garrison makes: the `incident` table (create,
encoded-query reads, PATCH of work notes and state) and the `sys_journal_field` table the work
notes are read back from.

It keeps real state, checks basic auth as an instance does, answers in the Table API's shapes
(`{"result": ...}`, errors as `{"error": {"message", "detail"}, "status": "failure"}`), enforces
the data policy that resolving needs a close code and close notes, and treats a Closed (7) incident
as read-only. Resolving or closing an incident already in that state is a no-op, or, with
`faults.already_in_state_error`, the 403 ACL refusal an instance gives to updates of a closed
record (a real instance gives it for Closed (7) only; the knob gives it for Resolved too).
Ticketing is not seeded from telemetry: a recorded incident starts with no incidents.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI, Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp

from tools.emulators.base import EmulatorState, FaultMiddleware, after_apply, digest
from tools.models import Environment

USERNAME = "garrison.integration"
PASSWORD = "emulator-servicenow-password"  # noqa: S105  (the emulator's own credential)
VIEWER = "garrison.viewer"  # authenticates with the same password, may only read (403)
TABLE = "/api/now/table"
WRITABLE = (
    "short_description",
    "description",
    "correlation_id",
    "correlation_display",
    "assignment_group",
    "state",
    "close_code",
    "close_notes",
)
RESOLVED, CLOSED = "6", "7"


class NowError(Exception):
    def __init__(self, status: int, message: str, detail: str) -> None:
        super().__init__(status, message)
        self.status, self.message, self.detail = status, message, detail


@dataclass
class NowWorld:
    incidents: dict[str, dict[str, str]] = field(default_factory=dict)  # by sys_id
    journal: list[dict[str, str]] = field(default_factory=list)
    next_number: int = 10001

    def incident(self, sys_id: str) -> dict[str, str]:
        record = self.incidents.get(sys_id)
        if record is None:
            raise NowError(
                404, "No Record found", "Record doesn't exist or ACL restricts the record retrieval"
            )
        return record


def _stamp() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")


def _query(records: Iterable[dict[str, str]], params: Mapping[str, str]) -> list[dict[str, str]]:
    """Encoded queries: `field=value` conditions joined by `^`, `ORDERBY[DESC]<field>`; then
    `sysparm_offset`, `sysparm_limit` and `sysparm_fields`."""
    found = list(records)
    order: list[tuple[str, bool]] = []
    for part in filter(None, params.get("sysparm_query", "").split("^")):
        if part.startswith("ORDERBYDESC"):
            order.append((part.removeprefix("ORDERBYDESC"), True))
        elif part.startswith("ORDERBY"):
            order.append((part.removeprefix("ORDERBY"), False))
        else:
            name, sep, value = part.partition("=")
            if not sep:
                raise NowError(400, "Invalid query", f"unsupported condition {part!r}")
            found = [r for r in found if r.get(name, "") == value]
    for name, descending in reversed(order):  # stable sorts, last key first
        found.sort(key=lambda r: r.get(name, ""), reverse=descending)
    offset = int(params.get("sysparm_offset", "0"))
    found = found[offset : offset + int(params.get("sysparm_limit", "10000"))]
    fields = [f for f in params.get("sysparm_fields", "").split(",") if f]
    return [{f: r.get(f, "") for f in fields} if fields else dict(r) for r in found]


def _check_auth(request: Request, write: bool) -> None:
    scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
    try:
        user, _, password = base64.b64decode(encoded).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        user, password = "", ""
    if scheme.lower() != "basic" or password != PASSWORD or user not in (USERNAME, VIEWER):
        raise NowError(401, "User Not Authenticated", "Required to provide Auth information")
    if write and user == VIEWER:
        raise NowError(403, "Operation Failed", "ACL Exception Insert/Update Failed")


async def _body(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        raise NowError(400, "Exception while reading request", "Invalid payload") from None
    if not isinstance(body, dict):
        raise NowError(400, "Exception while reading request", "Invalid payload")
    return body


def build_app(world: NowWorld, state: EmulatorState) -> FastAPI:
    app = FastAPI()

    @app.exception_handler(NowError)
    async def now_error(request: Request, error: NowError) -> Response:
        body = {"error": {"message": error.message, "detail": error.detail}, "status": "failure"}
        return JSONResponse(body, status_code=error.status)

    @app.get(f"{TABLE}/incident")
    async def list_incidents(request: Request) -> Response:
        _check_auth(request, write=False)
        found = _query(world.incidents.values(), request.query_params)
        return JSONResponse({"result": found}, headers={"X-Total-Count": str(len(found))})

    @app.get(f"{TABLE}/incident/{{sys_id}}")
    async def get_incident(request: Request, sys_id: str) -> Response:
        _check_auth(request, write=False)
        return JSONResponse({"result": world.incident(sys_id)})

    @app.post(f"{TABLE}/incident", status_code=201)
    async def create_incident(request: Request) -> Response:
        _check_auth(request, write=True)
        body = await _body(request)
        now = _stamp()
        record = {name: "" for name in WRITABLE}
        record.update({k: str(v) for k, v in body.items() if k in WRITABLE})
        record.update(
            sys_id=uuid.uuid4().hex,
            number=f"INC{world.next_number:07d}",
            state="1",
            sys_created_on=now,
            sys_updated_on=now,
            opened_at=now,
        )
        world.next_number += 1
        world.incidents[record["sys_id"]] = record
        state.changed("create_incident", record["correlation_id"] or record["number"])
        if (dropped := await after_apply(state, "create_incident")) is not None:
            return dropped
        return JSONResponse({"result": record}, status_code=201)

    @app.patch(f"{TABLE}/incident/{{sys_id}}")
    async def update_incident(request: Request, sys_id: str) -> Response:
        _check_auth(request, write=True)
        record = world.incident(sys_id)
        body = await _body(request)
        new_state = str(body.get("state", record["state"]))
        same_state = "state" in body and new_state == record["state"]
        if record["state"] == CLOSED and not same_state:  # a closed incident is read-only
            raise NowError(403, "Operation Failed", "ACL Exception Update Failed")
        if same_state and new_state in (RESOLVED, CLOSED) and state.faults.already_in_state_error:
            raise NowError(403, "Operation Failed", "ACL Exception Update Failed")
        updates = {k: str(v) for k, v in body.items() if k in WRITABLE}
        if new_state in (RESOLVED, CLOSED) and not same_state:
            merged = {**record, **updates}
            if not merged["close_code"] or not merged["close_notes"]:
                raise NowError(
                    403,
                    "Operation Failed",
                    "Data Policy Exception: The following fields are mandatory: "
                    "Resolution code, Resolution notes",
                )
        changed = any(record.get(k) != v for k, v in updates.items())
        record.update(updates)
        if note := str(body.get("work_notes") or ""):
            world.journal.append(
                {
                    "sys_id": uuid.uuid4().hex,
                    "name": "incident",
                    "element": "work_notes",
                    "element_id": sys_id,
                    "value": note,
                    "sys_created_on": _stamp(),
                }
            )
            changed = True
        if changed:
            record["sys_updated_on"] = _stamp()
            state.changed(
                "update_incident",
                f"{record['number']}#{digest(note)}" if note else record["number"],
            )
            if (dropped := await after_apply(state, "update_incident")) is not None:
                return dropped
        return JSONResponse({"result": record})

    @app.get(f"{TABLE}/sys_journal_field")
    async def list_journal(request: Request) -> Response:
        _check_auth(request, write=False)
        found = _query(world.journal, request.query_params)
        return JSONResponse({"result": found}, headers={"X-Total-Count": str(len(found))})

    return app


def build_emulator(
    environment: Environment, events: Iterable[Mapping[str, Any]], state: EmulatorState
) -> ASGIApp:
    """An instance with an empty incident table; the recording is not used."""
    del environment, events
    return FaultMiddleware(build_app(NowWorld(), state), state)
