"""What the agents' claims rest on: each rationale line and investigation finding with links to
the records it names, and the page of one host's kept records around one time.

The claims and their references come from the agents' audit entries (`agent.triage`,
`agent.investigation`, detail `claims`); the records from the store's `evidence_events`, kept
by the activity that read them (the EDR is never asked again here). Every value shown is
attacker-controlled text, escaped by the templates; query values are checked and a wrong one
is answered 400 with what is wrong."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Path, Query, Request
from starlette.responses import Response

from agents.evidence import same_host
from orchestrator.console.auth import Signed
from orchestrator.console.rendering import page
from orchestrator.server.problems import INCIDENT_ID, MAX_INCIDENT_ID
from orchestrator.store.records import AuditRecord
from tools.models import Alert

router = APIRouter(prefix="/console")
WINDOW = timedelta(minutes=5)
IncidentId = Annotated[str, Path(pattern=INCIDENT_ID, max_length=MAX_INCIDENT_ID)]


@dataclass(frozen=True)
class Link:
    label: str  # `<kind> <host> <time>[ pid <pid>]`
    url: str


@dataclass(frozen=True)
class ClaimLine:
    text: str
    anchor: str | None  # the alert row of this page it names, if any
    links: tuple[Link, ...] = ()


def events_url(incident_id: str, host: str, at: datetime, pid: int | None) -> str:
    query = {"host": host, "at": at.astimezone(UTC).isoformat()}
    if pid is not None:
        query["pid"] = str(pid)
    mark = "#rests-on" if pid is not None else ""  # the page opens on the process's first row
    return f"/console/incidents/{quote(incident_id, safe='')}/events?{urlencode(query)}{mark}"


def claims_of(entry: AuditRecord, incident_id: str) -> dict[str, tuple[Link, ...]]:
    """An agent audit entry's claims as `text -> links`; malformed ones are skipped (an entry
    written before claims were recorded has none)."""
    try:
        claims = json.loads(str(entry.detail.get("claims") or "[]"))
    except ValueError:
        return {}
    found: dict[str, tuple[Link, ...]] = {}
    for claim in claims if isinstance(claims, list) else []:
        try:
            links = []
            for ref in claim["refs"]:
                at = datetime.fromisoformat(ref["time"])
                pid = ref.get("pid") if isinstance(ref.get("pid"), int) else None
                label = f"{ref['source']} on {ref['host']} at {at.astimezone(UTC):%H:%M:%S}"
                label += f" pid {pid}" if pid is not None else ""
                links.append(Link(label, events_url(incident_id, str(ref["host"]), at, pid)))
            found[str(claim["text"])] = tuple(links)
        except (KeyError, TypeError, ValueError):
            continue
    return found


def latest(audit: list[AuditRecord], kind: str) -> AuditRecord | None:
    return next((e for e in reversed(audit) if e.type == kind), None)


def claim_lines(
    audit: list[AuditRecord], alerts: list[Alert], incident_id: str, kind: str, field: str
) -> list[ClaimLine]:
    """The lines of the newest `kind` entry's `field`, each with the page anchor of the alert it
    weighs (triage's `alert <uid>: ...` lines) and the links of its claim."""
    entry = latest(audit, kind)
    if entry is None:
        return []
    anchors: dict[str, str] = {}
    for n, alert in enumerate(alerts, 1):
        anchors.setdefault(alert.uid, f"alert-{n}")
    links = claims_of(entry, incident_id)
    lines: list[ClaimLine] = []
    for line in str(entry.detail.get(field) or "").splitlines():
        if not line:
            continue
        head, colon, _rest = line.partition(": ")
        uid = head.removeprefix("alert ") if colon and head.startswith("alert ") else None
        lines.append(ClaimLine(line, anchors.get(uid) if uid else None, links.get(line, ())))
    return lines


def _moment(text: str | None) -> datetime | None:
    try:
        return _aware(datetime.fromisoformat(text or ""))
    except ValueError:
        return None


def _aware(at: datetime) -> datetime:
    return at if at.tzinfo else at.replace(tzinfo=UTC)


@router.get("/incidents/{incident_id}/events", include_in_schema=False)
async def kept_events(
    request: Request,
    incident_id: IncidentId,
    session: Signed,
    host: Annotated[str, Query(max_length=1_024)] = "",
    at: Annotated[str, Query(max_length=64)] = "",
    pid: Annotated[str, Query(max_length=12)] = "",
) -> Response:
    store = request.app.state.deps.store
    moment = _moment(at)
    problems = [
        what
        for what, bad in (
            ("host is missing", not host.strip()),
            ("at is not an ISO 8601 time", moment is None),
            ("pid is not a number", bool(pid) and not pid.isdigit()),
        )
        if bad
    ]
    if problems or moment is None:
        return page(request, "not_found.html", session, 400, what="; ".join(problems) + ".")
    if await store.get_incident(incident_id) is None:
        return page(request, "not_found.html", session, 404, what=f"No incident {incident_id}.")
    events = await store.evidence.around(incident_id, host, moment, WINDOW)
    alerts = [
        a
        for a in await store.alerts_for(incident_id)
        if same_host(a.entities.host, host) and abs(_aware(a.time) - moment) <= WINDOW
    ]
    return page(
        request,
        "events.html",
        session,
        incident_id=incident_id,
        host=host,
        at=moment,
        pid=int(pid) if pid else None,
        window_min=int(WINDOW.total_seconds() // 60),
        events=events,
        alerts=alerts,
    )
