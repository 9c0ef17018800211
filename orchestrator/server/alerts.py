"""`POST /api/alerts` (a bearer token with the `ingest` scope) and
`POST /api/alerts/webhook/{source}` (an HMAC-signed delivery, `orchestrator/ingest/sources.py`):
one alert or a batch, in any accepted shape (`?shape=` fixes it, otherwise it is detected per
record), answered 202 with the alert ids only once the alerts are committed to the store.

Limits, each refused with a status that names it: a body over 1 MB (413, by the edge before the
token is read; kept as a dead letter, without its content, when the sender's token is good),
nesting deeper than 64 (422), more than 1,000 alerts (413). A body that is not UTF-8 or not JSON is
400; a record that cannot be normalised is kept in the dead-letter table with the reason and named
in the answer (422 when no record was accepted, else 202 with the rejected ones listed). When
ingestion cannot keep up the answer is 429 with `Retry-After`, and nothing of that request was
accepted. Nothing here answers 5xx.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.datastructures import Headers
from starlette.types import Scope as AsgiScope

from orchestrator.ingest.limits import MAX_BATCH, MAX_BODY_BYTES, json_depth_exceeds
from orchestrator.ingest.normalised import Normalised, NormaliseError, Shape
from orchestrator.ingest.sink import Backpressure
from orchestrator.ingest.sources import SOURCE_NAME, SignatureRejected, verify
from orchestrator.observability.metrics import ALERTS_REFUSED
from orchestrator.server.api import scoped
from orchestrator.server.app import ServerDeps
from orchestrator.server.limits import read_capped
from orchestrator.server.problems import DeadLettered, Invalid, Problem, refusals
from orchestrator.server.tokens import Scope
from tools.models import Alert

log = logging.getLogger("garrison.server")
router = APIRouter(prefix="/api/alerts", tags=["alerts"])
Ingester = Annotated[str, Depends(scoped(Scope.INGEST))]
_KEEP_BYTES = 64 * 1024  # what a dead letter keeps of a body too large to parse
_NO_NUL = "^[^\\u0000]*$"
SourceName = Annotated[
    str, Path(pattern=SOURCE_NAME, max_length=64, description="a source of the sources file")
]


def _documented_alert() -> dict[str, Any]:
    """`tools.models.Alert` as the OpenAPI document shows it: references inlined, without
    `maxLength` (longer text is cut to the model's bounds rather than refused), and text without
    NUL characters (refused: `_without_nul`)."""
    schema = Alert.model_json_schema()
    defs = schema.pop("$defs", {})

    def inline(node: Any) -> Any:
        if isinstance(node, dict):
            if "$ref" in node:
                return inline(defs[str(node["$ref"]).rsplit("/", 1)[-1]])
            out = {k: inline(v) for k, v in node.items() if k != "maxLength"}
            if out.get("type") == "string" and not {"format", "enum"} & out.keys():
                out["pattern"] = _NO_NUL
            return out
        if isinstance(node, list):
            return [inline(v) for v in node]
        return node

    return inline(schema)


# The body is read raw (any shape, detected per record): the document shows Garrison's own alert,
# and names the rest. A batch is not in the schema: its records are accepted or refused one by one
# (202 with the refused ones listed), which no request schema can express.
_ALERT_BODY = {
    "requestBody": {
        "required": True,
        "description": "One alert in Garrison's shape (below), or a batch: a JSON array of alerts"
        " or a vendor's envelope, in any shape of docs/ingestion.md, detected per record.",
        "content": {"application/json": {"schema": _documented_alert()}},
    }
}


class Rejected(BaseModel):
    index: int | None
    problem: str
    dead_letter: int


class AlertsAccepted(BaseModel):
    accepted: int
    duplicates: int
    alert_ids: list[str]
    incidents: list[str]
    rejected: list[Rejected]


def _deps(request: Request) -> ServerDeps:
    return request.app.state.deps


# Stateful clients (a schema-driven fuzzer) follow an accepted alert to its incident.
_TO_INCIDENT = {
    202: {
        "model": AlertsAccepted,
        "description": "accepted: committed to the store",
        "links": {
            "IncidentOfAlert": {
                "operationId": "get_incident_api_incidents__incident_id__get",
                "parameters": {"incident_id": "$response.body#/incidents/0"},
            }
        },
    }
}


@router.post(
    "",
    status_code=202,
    openapi_extra=_ALERT_BODY,
    responses=_TO_INCIDENT
    | refusals(
        401,
        403,
        404,
        422,
        429,
        s400=DeadLettered | Problem,
        s413=DeadLettered | Problem,
        s422=Invalid | DeadLettered | AlertsAccepted,
    ),
)
async def post_alerts(
    request: Request,
    who: Ingester,
    shape: Annotated[Shape | None, Query(description="the shape of every record")] = None,
) -> JSONResponse:
    """Send one alert or a batch (a JSON array, or a vendor's envelope)."""
    body = await _read(request, f"api:{who}")
    return await _ingest(_deps(request), body, shape, channel=f"api:{who}")


@router.post(
    "/webhook/{source}",
    status_code=202,
    openapi_extra=_ALERT_BODY,
    responses={202: {"model": AlertsAccepted, "description": "accepted: committed to the store"}}
    | refusals(
        401,
        404,
        409,
        422,
        429,
        s400=DeadLettered | Problem,
        s413=DeadLettered | Problem,
        s422=Invalid | DeadLettered | AlertsAccepted,
    ),
)
async def post_webhook(request: Request, source: SourceName) -> JSONResponse:
    """A signed delivery from a configured source (no bearer token)."""
    deps = _deps(request)
    configured = deps.sources.sources.get(source)
    if configured is None:
        raise HTTPException(404, "no such webhook source")
    # Not `_read`: a body refused before its signature is checked leaves no dead letter, only
    # the edge's (rate-limited) audit row, so an unsigned flood cannot fill the table.
    body = await read_capped(request, MAX_BODY_BYTES)
    try:
        sent = verify(configured.secret.get_secret_value(), request.headers, body, time.time())
    except SignatureRejected as rejected:
        ALERTS_REFUSED.labels("bad_signature").inc()
        raise HTTPException(401, str(rejected)) from None
    if not await deps.store.intake.claim_delivery(f"{source}:{sent}", datetime.now(UTC)):
        ALERTS_REFUSED.labels("replayed_delivery").inc()
        raise HTTPException(409, "this signed delivery was already received (a replay)")
    return await _ingest(deps, body, configured.shape, channel=f"webhook:{source}")


async def dead_letter_oversized(deps: ServerDeps, scope: AsgiScope) -> None:
    """The edge refused a declared body over the limit on `POST /api/alerts`: keep a dead letter
    (without content) when the sender's bearer token is good, as for a body that streamed past
    the limit. An unauthenticated body leaves only its audit row: no one may fill the table."""
    if scope["path"] != router.prefix or scope.get("method") != "POST" or deps.ingest is None:
        return
    scheme, _, token = Headers(scope=scope).get("authorization", "").partition(" ")
    found = deps.tokens.authenticate(token.strip()) if scheme.lower() == "bearer" else None
    if found is None or Scope.INGEST not in found[1]:
        return
    reason = f"body larger than {MAX_BODY_BYTES} bytes"
    ALERTS_REFUSED.labels("too_large").inc()
    await deps.store.intake.add_dead_letter(f"api:{found[0]}", "", reason, datetime.now(UTC))


async def _read(request: Request, channel: str) -> bytes:
    """The body, or 413; a refused body is recorded as a dead letter (without its content)."""
    try:
        return await read_capped(request, MAX_BODY_BYTES)
    except HTTPException as error:
        if error.status_code == 413:
            ALERTS_REFUSED.labels("too_large").inc()
            intake = _deps(request).store.intake
            await intake.add_dead_letter(channel, "", str(error.detail), datetime.now(UTC))
        raise


async def _ingest(deps: ServerDeps, body: bytes, shape: Shape | None, channel: str) -> JSONResponse:
    from orchestrator.ingest.shapes import normalise, split_batch

    if deps.ingest is None:
        raise HTTPException(404, "this server does not ingest alerts")
    intake = deps.store.intake
    now = datetime.now(UTC)

    async def dead(reason: str, text: str, index: int | None = None) -> Rejected:
        ALERTS_REFUSED.labels("invalid_record" if index is not None else "invalid_body").inc()
        kept, why = _storable(text), _storable(reason)
        letter = await intake.add_dead_letter(channel, kept, why, now, shape and shape.value)
        return Rejected(index=index, problem=why, dead_letter=letter)

    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as error:
        kept = await dead(f"the body is not UTF-8 (byte {error.start})", _kept(body))
        return _refuse(400, kept)
    if json_depth_exceeds(text):
        return _refuse(422, await dead("JSON nested deeper than 64 levels", text[:_KEEP_BYTES]))
    try:
        parsed: Any = json.loads(text)
    except json.JSONDecodeError as error:
        problem = f"not JSON: {error.msg} at line {error.lineno} column {error.colno}"
        return _refuse(400, await dead(problem, text[:_KEEP_BYTES]))
    except ValueError as error:  # an integer of more digits than Python converts (4,300)
        return _refuse(400, await dead(f"not usable JSON: {error}", text[:_KEEP_BYTES]))
    try:
        records = split_batch(parsed)
    except NormaliseError as error:
        return _refuse(422, await dead(str(error), text[:_KEEP_BYTES]))
    if len(records) > MAX_BATCH:
        problem = f"a batch of {len(records)} alerts: at most {MAX_BATCH} per request"
        return _refuse(413, await dead(problem, text[:_KEEP_BYTES]))
    accepted: list[Normalised] = []
    rejected: list[Rejected] = []
    # JSON writes a NUL only as the escape \u0000 (`json.loads` refuses a raw control character
    # in a string): a body without that text holds none, and its alerts need no walk.
    may_hold_nul = "\\u0000" in text
    for index, record in enumerate(records):
        try:
            item = normalise(record, shape)
            accepted.append(_without_nul(item) if may_hold_nul else item)
        except NormaliseError as error:
            original = json.dumps(record, separators=(",", ":"), default=str)
            rejected.append(await dead(str(error), original, index))
    if not accepted:
        return JSONResponse(_answer([], 0, [], rejected), status_code=422)
    try:
        result = await deps.ingest.accept(accepted)
    except Backpressure as busy:
        return JSONResponse(
            {"detail": f"ingestion is behind: {busy.reason}; nothing of this request was taken"},
            status_code=429,
            headers={"Retry-After": str(busy.retry_after_s)},
        )
    body_out = _answer(result.alert_ids, result.duplicates, result.incidents, rejected)
    return JSONResponse(body_out, status_code=202)


def _answer(
    ids: list[str], duplicates: int, incidents: list[str], rejected: list[Rejected]
) -> dict[str, Any]:
    return AlertsAccepted(
        accepted=len(ids),
        duplicates=duplicates,
        alert_ids=ids,
        incidents=incidents,
        rejected=rejected,
    ).model_dump()


def _refuse(status: int, rejected: Rejected) -> JSONResponse:
    return JSONResponse(
        {"detail": rejected.problem, "dead_letter": rejected.dead_letter}, status_code=status
    )


def _without_nul(item: Normalised) -> Normalised:
    """The alert, or NormaliseError naming the first field that holds a NUL character: no alert
    text needs one, and PostgreSQL cannot store one (it failed the whole batch, as a 429)."""
    found = _nul_path(item.alert.model_dump(), "") or _nul_path(
        {"source": item.source, "correlation": item.correlation}, ""
    )
    if found is not None:
        raise NormaliseError(found, "contains a NUL character (U+0000)")
    return item


def _nul_path(value: object, path: str) -> str | None:
    if isinstance(value, str):
        return path if "\x00" in value else None
    if isinstance(value, dict):
        for key, inner in value.items():
            found = _nul_path(inner, f"{path}.{key}" if path else str(key))
            if found is not None:
                return found
    if isinstance(value, list):
        for i, inner in enumerate(value):
            found = _nul_path(inner, f"{path}[{i}]")
            if found is not None:
                return found
    return None


def _storable(text: str) -> str:
    """Text a dead letter can keep in any database: a NUL written as the escape `\\x00`."""
    return text.replace("\x00", "\\x00")


def _kept(body: bytes) -> str:
    """A body that is not UTF-8, kept readable: undecodable bytes as \\x escapes."""
    return body[:_KEEP_BYTES].decode("utf-8", "backslashreplace")
