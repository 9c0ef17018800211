"""`POST /api/alerts` (a bearer token with the `ingest` scope) and
`POST /api/alerts/webhook/{source}` (an HMAC-signed delivery, `orchestrator/ingest/sources.py`):
one alert or a batch, in any accepted shape (`?shape=` fixes it, otherwise it is detected per
record), answered 202 with the alert ids only once the alerts are committed to the store.

Limits, each refused with a status that names it: a body over 1 MB (413), nesting deeper than 64
(422), more than 1,000 alerts (413). A body that is not UTF-8 or not JSON is 400; a record that
cannot be normalised is kept in the dead-letter table with the reason and named in the answer
(422 when no record was accepted, else 202 with the rejected ones listed). When ingestion cannot
keep up the answer is 429 with `Retry-After`, and nothing of that request was accepted. Nothing
here answers 5xx.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from orchestrator.ingest.limits import MAX_BATCH, MAX_BODY_BYTES, json_depth_exceeds
from orchestrator.ingest.normalised import Normalised, NormaliseError, Shape
from orchestrator.ingest.sink import Backpressure
from orchestrator.ingest.sources import SignatureRejected, verify
from orchestrator.server.api import scoped
from orchestrator.server.app import ServerDeps
from orchestrator.server.limits import read_capped
from orchestrator.server.tokens import Scope

log = logging.getLogger("garrison.server")
router = APIRouter(prefix="/api/alerts", tags=["alerts"])
Ingester = Annotated[str, Depends(scoped(Scope.INGEST))]
_KEEP_BYTES = 64 * 1024  # what a dead letter keeps of a body too large to parse


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


@router.post("", status_code=202, responses={400: {}, 413: {}, 422: {}, 429: {}})
async def post_alerts(
    request: Request,
    who: Ingester,
    shape: Annotated[Shape | None, Query(description="the shape of every record")] = None,
) -> JSONResponse:
    """Send one alert or a batch (a JSON array, or a vendor's envelope)."""
    body = await _read(request, f"api:{who}")
    return await _ingest(_deps(request), body, shape, channel=f"api:{who}")


@router.post("/webhook/{source}", status_code=202, responses={400: {}, 401: {}, 404: {}})
async def post_webhook(request: Request, source: str) -> JSONResponse:
    """A signed delivery from a configured source (no bearer token)."""
    deps = _deps(request)
    configured = deps.sources.sources.get(source)
    if configured is None:
        raise HTTPException(404, "no such webhook source")
    body = await _read(request, f"webhook:{source}")
    try:
        sent = verify(configured.secret.get_secret_value(), request.headers, body, time.time())
    except SignatureRejected as rejected:
        raise HTTPException(401, str(rejected)) from None
    if not await deps.store.intake.claim_delivery(f"{source}:{sent}", datetime.now(UTC)):
        raise HTTPException(409, "this signed delivery was already received (a replay)")
    return await _ingest(deps, body, configured.shape, channel=f"webhook:{source}")


async def _read(request: Request, channel: str) -> bytes:
    """The body, or 413; a refused body is recorded as a dead letter (without its content)."""
    try:
        return await read_capped(request, MAX_BODY_BYTES)
    except HTTPException as error:
        if error.status_code == 413:
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
        letter = await intake.add_dead_letter(channel, text, reason, now, shape and shape.value)
        return Rejected(index=index, problem=reason, dead_letter=letter)

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
    try:
        records = split_batch(parsed)
    except NormaliseError as error:
        return _refuse(422, await dead(str(error), text[:_KEEP_BYTES]))
    if len(records) > MAX_BATCH:
        problem = f"a batch of {len(records)} alerts: at most {MAX_BATCH} per request"
        return _refuse(413, await dead(problem, text[:_KEEP_BYTES]))
    accepted: list[Normalised] = []
    rejected: list[Rejected] = []
    for index, record in enumerate(records):
        try:
            accepted.append(normalise(record, shape))
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


def _kept(body: bytes) -> str:
    """A body that is not UTF-8, kept readable: undecodable bytes as \\x escapes."""
    return body[:_KEEP_BYTES].decode("utf-8", "backslashreplace")
