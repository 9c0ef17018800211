"""The console's pages: the incidents list, one incident, the approvals queue and its decisions.

Every route here depends on a signed-in session (`auth.Signed`); every POST on the form's CSRF
token (`auth.CheckedForm`). A decision goes through the same `ApprovalService` as Slack, the CLI
and the API, on channel `console`, bound to the action hash the page showed: the refusals
(requester or agent identity, outsider, repeat decider, expiry, changed action) are the
service's, and the page shows them in words."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Path, Request
from starlette.responses import RedirectResponse, Response

from orchestrator.console.auth import (
    SECURITY_HEADERS,
    CheckedForm,
    ConsoleConfig,
    Signed,
    config_of,
)
from orchestrator.console.evidence_pages import claim_lines
from orchestrator.console.people import assignable
from orchestrator.console.playbook_progress import PassProgress
from orchestrator.console.rendering import page
from orchestrator.console.views import (
    AGES,
    MINE,
    REFUSAL_WORDS,
    UNASSIGNED,
    ListFilters,
    countdown,
    proposal_of,
    temporal_link,
    timeline,
)
from orchestrator.models import DecisionKind, RefusalCode
from orchestrator.server.problems import APPROVAL_ID, INCIDENT_ID, MAX_INCIDENT_ID
from orchestrator.store.records import ApprovalStatus, IncidentRecord
from tools.models import Category, IncidentStatus, Severity, Verdict

router = APIRouter(prefix="/console")
_log = logging.getLogger(__name__)
LIST_LIMIT = 200
IncidentId = Annotated[str, Path(pattern=INCIDENT_ID, max_length=MAX_INCIDENT_ID)]
ApprovalId = Annotated[str, Path(pattern=APPROVAL_ID, max_length=20)]


@router.get("", include_in_schema=False)
@router.get("/", include_in_schema=False)
async def home(_session: Signed) -> Response:
    return redirect("/console/incidents")


@router.get("/incidents", include_in_schema=False)
async def incidents(request: Request, session: Signed) -> Response:
    deps = request.app.state.deps
    people = assignable(deps.approvals.directory)
    filters = ListFilters.parse(dict(request.query_params), people)
    where = filters.store_filter(datetime.now(UTC), session.user or "")
    rows = await deps.store.list_incidents(filters.status, limit=LIST_LIMIT, where=where)
    return page(
        request,
        "incidents.html",
        session,
        incidents=rows,
        assignees=await deps.store.assignments.assignees(r.id for r in rows),
        selected=filters.selected(),
        limit=LIST_LIMIT,
        choices={
            "status": [s.value for s in IncidentStatus],
            "verdict": [v.value for v in Verdict],
            "severity": [s.value for s in Severity],
            "category": [c.value for c in Category],
            "age": list(AGES),
            "assignee": [MINE, UNASSIGNED, *people],
        },
    )


@router.get("/incidents/{incident_id}", include_in_schema=False)
async def incident(request: Request, incident_id: IncidentId, session: Signed) -> Response:
    store = request.app.state.deps.store
    record = await store.get_incident(incident_id)
    if record is None:
        return page(
            request, "not_found.html", session, status_code=404, what=f"No incident {incident_id}."
        )
    config = config_of(request)
    alerts = await store.alerts_for(incident_id)
    audit = await store.audit_entries(incident_id=incident_id)
    approvals = await store.list_approvals(incident_id=incident_id)
    ticket = await store.tickets.for_incident(incident_id)
    progress, progress_error = await _playbook_progress(config, record)
    assignment = await store.assignments.of(incident_id)
    now = datetime.now(UTC)
    return page(
        request,
        "incident.html",
        session,
        incident=record,
        assignment=assignment,
        people=assignable(request.app.state.deps.approvals.directory),
        alerts=alerts,
        actions=await store.actions_for(incident_id),
        approvals=approvals,
        proposals={a.id: proposal_of(audit, a.id) for a in approvals},
        countdowns={a.id: countdown(a.deadline, now) for a in approvals},
        rationale=claim_lines(audit, alerts, incident_id, "agent.triage", "rationale"),
        findings=claim_lines(audit, alerts, incident_id, "agent.investigation", "findings"),
        audit=audit,
        timeline=timeline(alerts, audit),
        ticket=ticket,
        narrative=await store.model_use.narrative_of(incident_id),
        model_usage=await store.model_use.usage_of(incident_id),
        progress=progress,
        progress_error=progress_error,
        temporal_url=temporal_link(config.temporal_ui_url, config.temporal_namespace, incident_id),
    )


@router.get("/approvals", include_in_schema=False)
async def approvals(request: Request, session: Signed) -> Response:
    pending = await request.app.state.deps.store.list_approvals(ApprovalStatus.PENDING)
    now = datetime.now(UTC)
    return page(
        request,
        "approvals.html",
        session,
        approvals=sorted(pending, key=lambda a: a.deadline),
        countdowns={a.id: countdown(a.deadline, now) for a in pending},
    )


@router.post("/approvals/{approval_id}/decision", include_in_schema=False)
async def decide(
    request: Request, approval_id: ApprovalId, session: Signed, form: CheckedForm
) -> Response:
    deps = request.app.state.deps
    user = session.user or ""
    back = str(form.get("back") or "")  # "incident": back to its page; else the queue
    target = "/console/approvals"
    try:
        decision = DecisionKind(str(form.get("decision") or ""))
    except ValueError:
        session.flash.append(("refused", "Choose approve or deny."))
        return redirect(target)
    approval = await deps.store.get_approval(approval_id)
    if approval is not None and back == "incident":
        target = f"/console/incidents/{quote(approval.incident_id, safe='')}"
    directory = deps.approvals.directory
    slack_user = directory.slack_user_of(user)
    usergroups: frozenset[str] = frozenset()
    if deps.slack is not None and slack_user is not None:  # on call is on call on any channel
        usergroups = await deps.slack.usergroups_of(slack_user)
    reply = await deps.approvals.decide(
        approval_id,
        user,
        decision,
        channel="console",
        groups=directory.groups_of(user, usergroups),
        shown_hash=str(form.get("action_hash") or "")[:64],
    )
    if reply.accepted:
        ack = reply.ack
        count = f" ({ack.approvals} of {ack.required} approvals)" if ack else ""
        session.flash.append(("accepted", f"{decision.value}: {reply.message}{count}"))
    else:
        headline = REFUSAL_WORDS[reply.code or RefusalCode.REFUSED]
        session.flash.append(("refused", f"Refused. {headline} ({reply.message})"))
    return redirect(target)


async def _playbook_progress(
    config: ConsoleConfig, record: IncidentRecord
) -> tuple[list[PassProgress] | None, str | None]:
    """The passes of the incident's playbook (None: not shown), or why they could not be read."""
    if config.progress is None or record.playbook is None:
        return None, None
    try:
        return await config.progress.read(record.id), None
    except Exception as error:  # a page must render whatever the checkpoints hold
        _log.warning("playbook progress of %s unreadable: %r", record.id, error)
        return None, "The playbook's checkpoints could not be read."


def redirect(to: str) -> Response:
    response = RedirectResponse(to, status_code=303)
    response.headers.update(SECURITY_HEADERS)
    return response
