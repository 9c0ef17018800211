"""`/api`: read incidents and approvals, and decide approvals with the same checks as Slack.

The caller's identity is the one its bearer token stands for; the approver directory then
decides what it may do, exactly as for a Slack click or the CLI. Refusals map to statuses: 404
unknown, 403 not allowed (outsider, requester, the agents' own identity), 409 conflicting
(already decided, expired, changed action, repeat decider). Every attempt is audited.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field

from orchestrator.models import DecisionKind, RefusalCode
from orchestrator.server.app import ServerDeps
from orchestrator.server.tokens import Scope
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
}


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
        if scope not in scopes:
            raise HTTPException(403, f"this token lacks the {scope.value!r} scope")
        return identity

    return check


Caller = Annotated[str, Depends(scoped(Scope.READ))]
Approver = Annotated[str, Depends(scoped(Scope.APPROVE))]
Deps = Annotated[ServerDeps, Depends(_deps)]


class IncidentDetail(BaseModel):
    incident: IncidentRecord
    alerts: list[Alert]
    actions: list[ActionRecord]
    approvals: list[ApprovalRecord]
    audit: list[AuditRecord]


class DecisionBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    decision: DecisionKind
    action_hash: str = Field(
        min_length=1, max_length=128, description="the hash of the action you reviewed"
    )


class DecisionResult(BaseModel):
    approval_id: str
    status: str
    approvals: int | None = None
    required: int | None = None


@router.get("/incidents", tags=["incidents"])
async def list_incidents(
    _who: Caller, deps: Deps, limit: Annotated[int, Query(ge=1, le=500)] = 50
) -> list[IncidentRecord]:
    return await deps.store.list_incidents(limit=limit)


@router.get("/incidents/{incident_id}", tags=["incidents"])
async def get_incident(incident_id: str, _who: Caller, deps: Deps) -> IncidentDetail:
    incident = await deps.store.get_incident(incident_id)
    if incident is None:
        raise HTTPException(404, f"no incident {incident_id}")
    return IncidentDetail(
        incident=incident,
        alerts=await deps.store.alerts_for(incident_id),
        actions=await deps.store.actions_for(incident_id),
        approvals=await deps.store.list_approvals(incident_id=incident_id),
        audit=await deps.store.audit_entries(incident_id=incident_id),
    )


@router.get("/approvals", tags=["approvals"])
async def list_approvals(
    _who: Caller,
    deps: Deps,
    status: Annotated[Literal["pending", "all"], Query()] = "pending",
) -> list[ApprovalRecord]:
    return await deps.store.list_approvals(ApprovalStatus.PENDING if status == "pending" else None)


@router.get("/approvals/{approval_id}", tags=["approvals"])
async def get_approval(approval_id: str, _who: Caller, deps: Deps) -> ApprovalRecord:
    approval = await deps.store.get_approval(approval_id)
    if approval is None:
        raise HTTPException(404, f"no approval {approval_id}")
    return approval


@router.post(
    "/approvals/{approval_id}/decision",
    tags=["approvals"],
    responses={403: {}, 404: {}, 409: {}},
)
async def decide(approval_id: str, body: DecisionBody, who: Approver, deps: Deps) -> DecisionResult:
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
        raise HTTPException(STATUS_OF[reply.code or RefusalCode.REFUSED], reply.message)
    ack = reply.ack
    return DecisionResult(
        approval_id=approval_id,
        status=reply.message,
        approvals=ack.approvals if ack else None,
        required=ack.required if ack else None,
    )
