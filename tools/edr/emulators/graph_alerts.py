"""The Defender emulator's Microsoft Graph alerts: `GET /v1.0/security/alerts_v2` with `$filter`
(`lastUpdateDateTime`/`createdDateTime` compared by `gt|ge|lt|le`, clauses joined by `and`),
`$orderby` on either (`asc|desc`; by default the newest created first, as Graph lists them),
`$top` (1 to 2,000) and `$skip`, answering `{"@odata.context", "value", "@odata.nextLink"}`.

`@odata.nextLink` is `$skip`-based, as Graph's is: an alert updated between two pages moves, and
the pages after it shift.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlencode

from fastapi import FastAPI, Request
from starlette.responses import JSONResponse, Response

from tools.edr.emulators.alert_shapes import TimeCondition, matches_times, parse_instant
from tools.edr.emulators.defender_world import DefenderWorld

MAX_TOP = 2_000
_FIELDS = ("lastUpdateDateTime", "createdDateTime")
_CLAUSE = re.compile(r"^(\w+) (gt|ge|lt|le) '?([0-9T:.+\-Z]+)'?$")
_ORDER = re.compile(r"^(\w+)(?: (asc|desc))?$")
_CONTEXT = "https://graph.microsoft.com/v1.0/$metadata#security/alerts_v2"


def _bad_request(message: str) -> JSONResponse:
    body = {"error": {"code": "BadRequest", "message": message[:200]}}
    return JSONResponse(body, status_code=400)


_ODATA_OPS = {"gt": ">", "ge": ">=", "lt": "<", "le": "<="}


def _clauses(spec: str) -> list[TimeCondition]:
    clauses = []
    for part in filter(None, (p.strip() for p in re.split(r"\s+and\s+", spec.strip()))):
        match = _CLAUSE.match(part)
        if match is None or match.group(1) not in _FIELDS:
            raise ValueError(part)
        clauses.append((match.group(1), _ODATA_OPS[match.group(2)], parse_instant(match.group(3))))
    return clauses


def _key(alert: dict[str, Any], field: str) -> tuple[int, Any, str]:
    value = alert.get(field)
    instant = parse_instant(value) if isinstance(value, str) else None
    return (0, None, "") if instant is None else (1, instant, str(alert["id"]))


def add_graph_alert_routes(app: FastAPI, world: DefenderWorld) -> None:
    @app.get("/v1.0/security/alerts_v2")
    async def list_alerts(request: Request) -> Response:
        params = request.query_params
        try:
            top = int(params.get("$top", "100"))
            skip = int(params.get("$skip", "0"))
            clauses = _clauses(params.get("$filter", ""))
        except ValueError as error:
            return _bad_request(f"Invalid query option: {error}")
        if not 1 <= top <= MAX_TOP or skip < 0:
            return _bad_request(f"$top must be between 1 and {MAX_TOP}, $skip at least 0")
        order = _ORDER.match(params.get("$orderby", "createdDateTime desc").strip())
        if order is None or order.group(1) not in _FIELDS:
            return _bad_request(f"Invalid $orderby: {params.get('$orderby', '')}")
        field, descending = order.group(1), order.group(2) == "desc"
        rows = sorted(
            (a for a in world.alerts.values() if matches_times(a, clauses)),
            key=lambda a: _key(a, field),
            reverse=descending,
        )
        body: dict[str, Any] = {"@odata.context": _CONTEXT, "value": rows[skip : skip + top]}
        if len(rows) > skip + top:
            query = {k: v for k, v in params.items() if k != "$skip"}
            query["$skip"] = str(skip + top)
            base = str(request.base_url).rstrip("/")
            body["@odata.nextLink"] = f"{base}/v1.0/security/alerts_v2?{urlencode(query)}"
        return JSONResponse(body)
