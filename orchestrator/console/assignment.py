"""Who works an incident: take it, assign it to another person of the approver directory, or
unassign it, from the incident's page (a POST with the session's CSRF token).

The assignee must be the signed-in analyst or a person the approver directory names (its
`people` and its groups' members); anything else is refused with the reason shown, and nothing is
stored. Each change is audited as `incident.assigned` with the actor, the assignee ("" when
unassigned) and who had it before."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import quote

from fastapi import APIRouter, Request
from starlette.responses import Response

from orchestrator.console.auth import CheckedForm, Signed, refuse
from orchestrator.console.pages import IncidentId, redirect
from orchestrator.console.people import assignable
from orchestrator.identity import IdentityError, canonical_identity
from orchestrator.store.records import AuditEvent
from orchestrator.store.repository import Store

router = APIRouter(prefix="/console")
ASSIGNED = "incident.assigned"


@router.post("/incidents/{incident_id}/assignment", include_in_schema=False)
async def assign(
    request: Request, incident_id: IncidentId, session: Signed, form: CheckedForm
) -> Response:
    deps = request.app.state.deps
    store = deps.store
    user = session.user or ""
    if await store.get_incident(incident_id) is None:
        session.flash.append(("refused", f"Refused. There is no incident {incident_id}."))
        return redirect("/console/incidents")
    back = redirect(f"/console/incidents/{quote(incident_id, safe='')}")
    previous = await store.assignments.of(incident_id)
    if form.get("unassign"):
        if previous is None:
            session.flash.append(("refused", "Nothing to do: the incident is not assigned."))
            return back
        await store.assignments.unassign(incident_id)
        await _audit(store, user, incident_id, "", previous.assignee)
        session.flash.append(("accepted", f"Unassigned (it was {previous.assignee})."))
        return back
    raw = str(form.get("assignee") or "")[:256]
    try:
        assignee = canonical_identity(raw)
    except IdentityError as error:
        return await _refused(request, session.flash, user, back, f"no such person: {error}")
    if assignee != user and assignee not in assignable(deps.approvals.directory):
        reason = "that person is not in the approver directory"
        return await _refused(request, session.flash, user, back, reason)
    if previous is not None and previous.assignee == assignee:
        session.flash.append(("accepted", f"Already assigned to {assignee}."))
        return back
    await store.assignments.assign(incident_id, assignee, user, datetime.now(UTC))
    await _audit(store, user, incident_id, assignee, previous.assignee if previous else "")
    session.flash.append(("accepted", f"Assigned to {assignee}."))
    return back


async def _refused(
    request: Request, flash: list[tuple[str, str]], user: str, back: Response, reason: str
) -> Response:
    await refuse(request, user or "-", f"assignment refused: {reason}", status=422)
    flash.append(("refused", f"Refused: {reason}. The incident's assignee did not change."))
    return back


async def _audit(store: Store, actor: str, incident_id: str, assignee: str, before: str) -> None:
    await store.append_audit(
        AuditEvent(
            type=ASSIGNED,
            actor=actor,
            incident_id=incident_id,
            target=incident_id,
            outcome="assigned" if assignee else "unassigned",
            source="channel:console",
            detail={"assignee": assignee, "previous": before},
        )
    )
