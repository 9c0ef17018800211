"""`/api`: read incidents and approvals, and decide approvals with the same checks as Slack.

The caller's identity is the one its bearer token stands for; the approver directory then
decides what it may do, exactly as for a Slack click or the CLI. Refusals map to statuses: 404
unknown, 403 not allowed (outsider, requester, the agents' own identity), 409 conflicting
(already decided, expired, changed action, repeat decider). Every attempt is audited: a
decision's refusal by the approval service (`approval.decision_refused` and the like), every other
refusal by the edge (`orchestrator.server.edge`), once each.

Ids and hashes are validated before anything reads the store (`problems.py` holds the patterns):
a malformed or over-long one is a 422 naming the field, never a 500 from a deeper model.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field

from orchestrator.models import DecisionKind, RefusalCode
from orchestrator.server.app import ServerDeps
from orchestrator.server.edge import mark_audited, note_caller
from orchestrator.server.problems import (
    ACTION_HASH,
    APPROVAL_ID,
    INCIDENT_ID,
    MAX_INCIDENT_ID,
    refusals,
)
from orchestrator.server.tokens import Scope
from orchestrator.store.assignments import Assignment
from orchestrator.store.records import (
    ActionRecord,
    ApprovalRecord,
    ApprovalStatus,
    AuditRecord,
    IncidentRecord,
)
from tools.models import Alert

router = APIRouter(prefix="/api")
bearer = HTTPBearer(auto_error=False, description="A token from GARRISON_API_TOKENS_FILE")
STATUS_OF = {
    RefusalCode.UNKNOWN: 404,
    RefusalCode.SELF_APPROVAL: 403,
    RefusalCode.UNAUTHORISED: 403,
    RefusalCode.DECIDED: 409,
    RefusalCode.CHANGED: 409,
    RefusalCode.REFUSED: 409,
    RefusalCode.UNAVAILABLE: 503,  # the decision was audited, not taken: the caller retries
}
RETRY_AFTER_S = "10"


# Dependencies are `async def`: FastAPI runs a plain `def` dependency in a worker thread, a hop
# per dependency per request on the ingestion hot path.
async def _deps(request: Request) -> ServerDeps:
    return request.app.state.deps


def authenticate(
    request: Request, credentials: HTTPAuthorizationCredentials | None
) -> tuple[str, frozenset[Scope]]:
    """The identity and scopes of the bearer token, or 401."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise HTTPException(401, "a bearer token is required", {"WWW-Authenticate": "Bearer"})
    found = request.app.state.deps.tokens.authenticate(credentials.credentials)
    if found is None:
        raise HTTPException(401, "unknown token", {"WWW-Authenticate": "Bearer"})
    return found


def scoped(scope: Scope) -> Callable[..., Awaitable[str]]:
    """A dependency: the caller's identity, or 403 when its token lacks `scope`."""

    async def check(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> str:
        identity, scopes = authenticate(request, credentials)
        note_caller(request, identity)
        if scope not in scopes:
            raise HTTPException(403, f"this token lacks the {scope.value!r} scope")
        return identity

    return check


Caller = Annotated[str, Depends(scoped(Scope.READ))]
Approver = Annotated[str, Depends(scoped(Scope.APPROVE))]
Deps = Annotated[ServerDeps, Depends(_deps)]
ApprovalId = Annotated[
    str, Path(pattern=APPROVAL_ID, max_length=20, description="`apr-` and 16 hex digits")
]
IncidentId = Annotated[
    str, Path(pattern=INCIDENT_ID, max_length=MAX_INCIDENT_ID, description="an incident's id")
]


class IncidentListing(IncidentRecord):
    """An incident as listed: its record and who it is assigned to (None: nobody)."""

    assignee: str | None = None


class IncidentDetail(BaseModel):
    incident: IncidentRecord
    assignment: Assignment | None = None
    alerts: list[Alert]
    actions: list[ActionRecord]
    approvals: list[ApprovalRecord]
    audit: list[AuditRecord]


class DecisionBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    decision: DecisionKind
    action_hash: str = Field(
        pattern=ACTION_HASH,
        max_length=64,
        description="the hash of the action you reviewed (64 hex digits)",
    )


class DecisionResult(BaseModel):
    approval_id: str
    status: str
    approvals: int | None = None
    required: int | None = None


@router.get("/incidents", tags=["incidents"], responses=refusals(401, 403, 422))
async def list_incidents(
    _who: Caller, deps: Deps, limit: Annotated[int, Query(ge=1, le=500)] = 50
) -> list[IncidentListing]:
    incidents = await deps.store.list_incidents(limit=limit)
    assignees = await deps.store.assignments.assignees(i.id for i in incidents)
    return [IncidentListing(**i.model_dump(), assignee=assignees.get(i.id)) for i in incidents]


@router.get("/incidents/{incident_id}", tags=["incidents"], responses=refusals(401, 403, 404, 422))
async def get_incident(incident_id: IncidentId, _who: Caller, deps: Deps) -> IncidentDetail:
    incident = await deps.store.get_incident(incident_id)
    if incident is None:
        raise HTTPException(404, f"no incident {incident_id}")
    return IncidentDetail(
        incident=incident,
        assignment=await deps.store.assignments.of(incident_id),
        alerts=await deps.store.alerts_for(incident_id),
        actions=await deps.store.actions_for(incident_id),
        approvals=await deps.store.list_approvals(incident_id=incident_id),
        audit=await deps.store.audit_entries(incident_id=incident_id),
    )


@router.get("/approvals", tags=["approvals"], responses=refusals(401, 403, 422))
async def list_approvals(
    _who: Caller,
    deps: Deps,
    status: Annotated[Literal["pending", "all"], Query()] = "pending",
) -> list[ApprovalRecord]:
    return await deps.store.list_approvals(ApprovalStatus.PENDING if status == "pending" else None)


@router.get("/approvals/{approval_id}", tags=["approvals"], responses=refusals(401, 403, 404, 422))
async def get_approval(approval_id: ApprovalId, _who: Caller, deps: Deps) -> ApprovalRecord:
    approval = await deps.store.get_approval(approval_id)
    if approval is None:
        raise HTTPException(404, f"no approval {approval_id}")
    return approval


@router.post(
    "/approvals/{approval_id}/decision",
    tags=["approvals"],
    responses=refusals(401, 403, 404, 409, 422, 503),
)
async def decide(
    request: Request, approval_id: ApprovalId, body: DecisionBody, who: Approver, deps: Deps
) -> DecisionResult:
    """Approve or deny as the token's identity, bound to the action hash you reviewed."""
    directory = deps.approvals.directory
    slack_user = directory.slack_user_of(who)
    usergroups = frozenset()
    if deps.slack is not None and slack_user is not None:  # on call is on call on any channel
        usergroups = await deps.slack.usergroups_of(slack_user)
    reply = await deps.approvals.decide(
        approval_id,
        who,
        body.decision,
        channel="api",
        groups=directory.groups_of(who, usergroups),
        shown_hash=body.action_hash,
    )
    if not reply.accepted:
        mark_audited(request)  # the service wrote approval.decision_refused (or denied_*)
        status = STATUS_OF[reply.code or RefusalCode.REFUSED]
        headers = {"Retry-After": RETRY_AFTER_S} if status == 503 else None
        raise HTTPException(status, reply.message, headers)
    ack = reply.ack
    return DecisionResult(
        approval_id=approval_id,
        status=reply.message,
        approvals=ack.approvals if ack else None,
        required=ack.required if ack else None,
    )
