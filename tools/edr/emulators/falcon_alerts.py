"""The Falcon emulator's Alerts API v2: `GET /alerts/queries/alerts/v2` (an FQL `filter` of
timestamp comparisons joined by `+`, `sort=<field>.asc|desc`, `limit` up to 10,000, `offset`
paging up to 10,000 results and `after` paging beyond) answering composite ids, and
`POST /alerts/entities/alerts/v2` (`{"composite_ids": [...]}`, at most 1,000) answering entities.

`after` is a search-after token over (sort field, composite id), as Falcon's is: it does not
shift when an alert already read is updated meanwhile. Entities without the sorted field sort
first; a filter on a field excludes them.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import uuid
from datetime import datetime
from typing import Any

from fastapi import FastAPI, Request
from starlette.responses import JSONResponse, Response

from tools.edr.emulators.alert_shapes import TimeCondition, matches_times, parse_instant
from tools.edr.emulators.crowdstrike_world import FalconWorld

MAX_LIMIT = 10_000
MAX_IDS = 1_000
_TIME_FIELDS = ("updated_timestamp", "created_timestamp", "timestamp")
_CONDITION = re.compile(r"^(\w+):(>=|<=|>|<)'([^']*)'$")
_SORT = re.compile(r"^(\w+)(?:[.|](asc|desc))?$")
_Key = tuple[int, Any, str]


def _envelope(
    resources: list[Any], status: int = 200, *, error: str | None = None, **pagination: Any
) -> JSONResponse:
    meta: dict[str, Any] = {
        "query_time": 0.001,
        "powered_by": "detectsapi",
        "trace_id": str(uuid.uuid4()),
    }
    if pagination:
        meta["pagination"] = pagination
    errors = [{"code": status, "message": error}] if error else []
    body = {"meta": meta, "resources": resources, "errors": errors}
    return JSONResponse(body, status_code=status)


def _conditions(spec: str) -> list[TimeCondition]:
    conditions = []
    for part in filter(None, (p.strip() for p in spec.split("+"))):
        match = _CONDITION.match(part)
        if match is None or match.group(1) not in _TIME_FIELDS:
            raise ValueError(part)
        conditions.append((match.group(1), match.group(2), parse_instant(match.group(3))))
    return conditions


def _key(entity: dict[str, Any], field: str) -> _Key:
    value = entity.get(field)
    instant = parse_instant(value) if isinstance(value, str) else None
    # Entities without the field sort first; the composite id breaks ties, as in Falcon.
    return (0, None, "") if instant is None else (1, instant, str(entity["composite_id"]))


def _token(key: _Key) -> str:
    second, nanos = key[1]
    raw = json.dumps({"version": "v1", "after": [second.isoformat(), nanos, key[2]]})
    return base64.b64encode(raw.encode()).decode()


def _untoken(token: str) -> Any:
    second, nanos, composite_id = json.loads(base64.b64decode(token, validate=True))["after"]
    return (1, (datetime.fromisoformat(second), int(nanos)), str(composite_id))


def add_alert_routes(app: FastAPI, world: FalconWorld) -> None:
    @app.get("/alerts/queries/alerts/v2")
    async def query_alerts(
        filter: str = "", sort: str = "timestamp.desc", limit: int = 100, offset: int = 0,
        after: str = "",
    ) -> Response:  # fmt: skip
        if not 1 <= limit <= MAX_LIMIT:
            return _envelope([], 400, error=f"limit must be between 1 and {MAX_LIMIT}")
        sorted_by = _SORT.match(sort.strip())
        if sorted_by is None or sorted_by.group(1) not in _TIME_FIELDS:
            return _envelope([], 400, error=f"Invalid sort: {sort[:100]}")
        try:
            conditions = _conditions(filter)
            start = _untoken(after) if after else None
        except (ValueError, KeyError, TypeError, binascii.Error):
            return _envelope([], 400, error=f"Invalid filter or after: {filter[:100]}")
        field, descending = sorted_by.group(1), sorted_by.group(2) == "desc"
        rows = sorted(
            (e for e in world.alerts.values() if matches_times(e, conditions)),
            key=lambda e: _key(e, field),
            reverse=descending,
        )
        total = len(rows)
        if start is not None:
            rows = [
                r
                for r in rows
                if (_key(r, field) < start if descending else _key(r, field) > start)
            ]
            offset = 0
        elif offset + limit > MAX_LIMIT:
            return _envelope([], 400, error="offset + limit must be at most 10000: use after")
        page = rows[offset : offset + limit]
        pagination: dict[str, Any] = {"limit": limit, "total": total}
        if not after:
            pagination["offset"] = offset
        if page and len(rows) > offset + len(page):
            pagination["after"] = _token(_key(page[-1], field))
        return _envelope([str(e["composite_id"]) for e in page], **pagination)

    @app.post("/alerts/entities/alerts/v2")
    async def get_alerts(request: Request) -> Response:
        body = await request.json()
        ids = body.get("composite_ids") if isinstance(body, dict) else None
        if not isinstance(ids, list) or not ids or len(ids) > MAX_IDS:
            return _envelope([], 400, error=f"composite_ids: 1 to {MAX_IDS} ids are required")
        found = [world.alerts[i] for i in ids if isinstance(i, str) and i in world.alerts]
        if not found:
            return _envelope([], 404, error="Alerts not found")
        return _envelope(found)
