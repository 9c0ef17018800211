"""`POST /slack/interactions`: Approve and Deny clicks from approval cards.

Order matters. The body is read with a cap, then the v0 signature is verified over the raw bytes:
nothing else runs for a request Slack did not sign. Every rejection is a 4xx, audited by the edge
(`orchestrator.server.edge`) as `slack.request_rejected`, rate-limited per client address so that a
flood of unsigned requests cannot fill the audit log. Only then is the form parsed. A replayed
click (same team, user, action and action_ts) is recognised by the store and ignored. The click is
acknowledged at once (Slack wants an answer within 3 seconds); the decision then travels to the
workflow through the `ApprovalService`, the same path as the CLI and the API, and the clicker hears
the outcome as an ephemeral message. Authorisation is the server's: the workspace and app must be
the configured ones and the Slack user must belong to the request's approver group.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING
from urllib.parse import parse_qs

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from orchestrator.approvals.directory import SLACK_USER
from orchestrator.models import DecisionKind
from orchestrator.server.edge import note_caller
from orchestrator.server.limits import read_capped
from orchestrator.server.problems import ACTION_HASH, APPROVAL_ID, Problem, refusals
from orchestrator.slack.signing import SignatureRejected, verify
from orchestrator.store.records import AuditDetailValue, AuditEvent

if TYPE_CHECKING:
    from orchestrator.server.app import ServerDeps

log = logging.getLogger("garrison.slack")
router = APIRouter()
ACTIONS = {"garrison.approve": DecisionKind.APPROVE, "garrison.deny": DecisionKind.DENY}


class _Payload(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class _Id(_Payload):
    id: str = Field(max_length=64)


class _Action(_Payload):
    action_id: str = Field(max_length=255)
    value: str = Field(default="", max_length=2000)
    action_ts: str = Field(max_length=64)


class BlockActions(_Payload):
    type: str
    team: _Id
    user: _Id
    api_app_id: str = Field(default="", max_length=64)
    channel: _Id | None = None
    trigger_id: str = Field(default="", max_length=255)
    actions: list[_Action] = Field(min_length=1, max_length=10)


class _ButtonValue(_Payload):
    approval_id: str = Field(max_length=20, pattern=APPROVAL_ID)
    action_hash: str = Field(max_length=64, pattern=ACTION_HASH)


@dataclass(frozen=True)
class Click:
    team_id: str
    user_id: str
    app_id: str
    channel_id: str | None
    decision: DecisionKind
    approval_id: str
    action_hash: str
    replay_key: str


_FORM_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/x-www-form-urlencoded": {
                "schema": {
                    "type": "object",
                    "properties": {"payload": {"type": "string"}},
                    "required": ["payload"],
                }
            }
        },
    }
}


@router.post(
    "/slack/interactions",
    status_code=200,
    tags=["slack"],
    openapi_extra=_FORM_BODY,
    responses={200: {"description": "received (the outcome follows as an ephemeral message)"}}
    | refusals(401, 404, s400=Problem),
)
async def interactions(request: Request) -> Response:
    """Slack's interactivity request URL (form body `payload=<json>`, signed with v0)."""
    deps: ServerDeps = request.app.state.deps
    if deps.slack is None:
        raise HTTPException(404, "Slack is not configured on this server")
    body = await read_capped(request)
    try:
        verify(deps.slack.signing_secret, request.headers, body, now=time.time())
    except SignatureRejected as rejected:
        return JSONResponse({"detail": str(rejected)}, status_code=401)
    note_caller(request, "slack")  # signed by Slack: a refusal from here on is Slack's request
    try:
        click = parse_click(body)
    except ValueError as problem:
        return JSONResponse({"detail": str(problem)}, status_code=400)
    if click is None:  # a signed ssl_check or an interaction Garrison does not use
        return Response(status_code=200)
    if not await deps.store.slack.claim_interaction(click.replay_key, datetime.now(UTC)):
        await _audit(
            deps, "slack.replay_ignored", f"slack:{click.user_id}", "already received", click
        )
        return JSONResponse({"text": "already received"}, status_code=200)
    deps.tasks.spawn(handle_click(deps, click))
    return Response(status_code=200)


def parse_click(body: bytes) -> Click | None:
    """The click in a verified body; None for what Garrison ignores; ValueError for junk."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError("the body is not UTF-8") from None
    form = parse_qs(text, max_num_fields=20)
    if "ssl_check" in form:
        return None
    raw = form.get("payload")
    if not raw:
        raise ValueError("no payload field in the form body")
    try:
        payload = BlockActions.model_validate_json(raw[0])
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "payload"
        raise ValueError(f"payload.{where}: {first['msg']}") from None
    if payload.type != "block_actions":
        return None
    action = payload.actions[0]
    decision = ACTIONS.get(action.action_id)
    if decision is None:
        return None
    try:
        value = _ButtonValue.model_validate_json(action.value)
    except ValidationError:
        raise ValueError("payload.actions.0.value: not a Garrison approval button") from None
    if not SLACK_USER.fullmatch(payload.user.id):
        raise ValueError("payload.user.id: not a Slack user id")
    seen = "|".join((payload.team.id, payload.user.id, action.action_id, action.action_ts))
    return Click(
        team_id=payload.team.id,
        user_id=payload.user.id,
        app_id=payload.api_app_id,
        channel_id=payload.channel.id if payload.channel else None,
        decision=decision,
        approval_id=value.approval_id,
        action_hash=value.action_hash,
        replay_key="slack:" + hashlib.sha256(seen.encode()).hexdigest(),
    )


async def handle_click(deps: ServerDeps, click: Click) -> None:
    """Authorise and apply one click, then tell the clicker; runs after Slack got its 200."""
    try:
        await _apply_click(deps, click)
    except Exception as error:  # the clicker must hear that nothing happened, and why
        log.exception("click on %s by %s failed", click.approval_id, click.user_id)
        await _audit(deps, "slack.click_failed", f"slack:{click.user_id}", str(error), click)
        await _tell(deps, click, "Not applied: Garrison could not process it; click again.")


async def _apply_click(deps: ServerDeps, click: Click) -> None:
    assert deps.slack is not None
    directory = deps.approvals.directory
    workspace = directory.slack
    refusal = None
    if workspace is None:
        refusal = "this Garrison has no Slack workspace in its approver directory"
    elif click.team_id != workspace.team_id:
        refusal = "clicks from this Slack workspace are not accepted"
    elif workspace.app_id is not None and click.app_id != workspace.app_id:
        refusal = "clicks through this Slack app are not accepted"
    if refusal is not None:
        await _audit(deps, "approval.denied_unauthorized", f"slack:{click.user_id}", refusal, click)
        await _tell(deps, click, f"Not applied: {refusal}.")
        return
    identity = directory.identity_of_slack_user(click.user_id)
    usergroups = await deps.slack.usergroups_of(click.user_id)
    reply = await deps.approvals.decide(
        click.approval_id,
        identity,
        click.decision,
        channel="slack",
        groups=directory.groups_of(identity, usergroups),
        shown_hash=click.action_hash,
    )
    if not reply.accepted:
        await _tell(deps, click, f"Not applied: {reply.message}.")
        return
    ack = reply.ack
    if ack is not None and ack.status == "recorded":
        await _tell(deps, click, f"Recorded: {ack.approvals} of {ack.required} approvals so far.")
        try:  # the approval stands whether or not the timeline shows it
            request = await deps.slack.notifier.request_of(click.approval_id)
            if request is not None:
                await deps.slack.notifier.note(
                    request,
                    f"decision:{identity}",
                    f"{click.decision.value} recorded ({ack.approvals} of {ack.required});"
                    " waiting for another approver",
                    mentions=[click.user_id],
                )
        except Exception as error:
            log.warning("timeline note for %s not posted: %s", click.approval_id, error)
        return
    await _tell(deps, click, f"Done: {reply.message}.")


async def _tell(deps: ServerDeps, click: Click, text: str) -> None:
    if deps.slack is None or click.channel_id is None:
        return
    try:
        await deps.slack.notifier.ephemeral(click.channel_id, click.user_id, text)
    except Exception as error:  # the decision stands whether or not the clicker hears of it
        log.warning("could not tell %s: %s", click.user_id, error)


async def _audit(
    deps: ServerDeps, kind: str, actor: str, outcome: str, click: Click | None
) -> None:
    detail: dict[str, AuditDetailValue] = (
        {} if click is None else {"team": click.team_id, "app": click.app_id}
    )
    await deps.store.append_audit(
        AuditEvent(
            type=kind,
            actor=actor,
            target=click.approval_id if click else None,
            outcome=outcome[:500],
            source="channel:slack",
            approval_ref=click.approval_id if click else None,
            detail=detail,
        )
    )


def json_value(approval_id: str, action_hash: str) -> str:
    """The button value Garrison puts on its cards (and tests sign)."""
    return json.dumps({"approval_id": approval_id, "action_hash": action_hash})
