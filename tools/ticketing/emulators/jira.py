"""An emulator of the Jira Cloud REST API v3 calls Garrison makes: issues with labels and ADF
descriptions, comments, workflow transitions, and the enhanced JQL search (`/search/jql`).

It keeps real state, checks basic auth (email + API token) as Jira Cloud does, answers errors in
Jira's `{"errorMessages": [...], "errors": {...}}` body, and lags its search behind creation by
`faults.search_lag_s`, as Jira's search index does. The workflow is Jira's simplified one:
To Do -> In Progress -> Done, with Reopen back to To Do. Transitioning a Done issue to Done is a
no-op, or, with `faults.already_in_state_error`, Jira's "transition is not valid" 400.
Ticketing is not seeded from telemetry: a recorded incident starts with no issues.
"""

from __future__ import annotations

import base64
import binascii
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI, Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp

from tools.emulators.base import EmulatorState, FaultMiddleware, after_apply, digest
from tools.models import Environment

EMAIL = "garrison-bot@example.com"
API_TOKEN = "emulator-jira-token"  # noqa: S105  (the emulator's own credential)
VIEWER_EMAIL = "viewer@example.com"  # authenticates, but may not change anything (403)
PROJECT = "SEC"
ISSUE_TYPES = ("Task", "Bug", "Incident")
API = "/rest/api/3"

TODO = {"id": "10000", "name": "To Do", "statusCategory": {"id": 2, "key": "new", "name": "To Do"}}
PROGRESS = {
    "id": "3",
    "name": "In Progress",
    "statusCategory": {"id": 4, "key": "indeterminate", "name": "In Progress"},
}
DONE = {"id": "10001", "name": "Done", "statusCategory": {"id": 3, "key": "done", "name": "Done"}}
# transition id -> (name, target status); every transition is global, as in simplified workflows
TRANSITIONS = {"11": ("To Do", TODO), "21": ("In Progress", PROGRESS), "31": ("Done", DONE)}
_CLAUSE = re.compile(r'\s*(\w+)\s*=\s*"((?:[^"\\]|\\.)*)"\s*', re.IGNORECASE)


class JiraError(Exception):
    def __init__(self, status: int, messages: list[str], errors: dict[str, str] | None = None):
        super().__init__(status, messages)
        self.status, self.messages, self.errors = status, messages, errors or {}


@dataclass
class Issue:
    id: str
    key: str
    summary: str
    description: Any
    labels: list[str]
    issue_type: str
    created: datetime
    visible_at: float  # monotonic time from which search sees it
    status: dict[str, Any] = field(default_factory=lambda: TODO)
    comments: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class JiraWorld:
    issues: dict[str, Issue] = field(default_factory=dict)
    next_id: int = 10000

    def get(self, key: str) -> Issue:
        issue = self.issues.get(key.upper())
        if issue is None:
            raise JiraError(404, ["Issue does not exist or you do not have permission to see it."])
        return issue


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "+0000")


def _is_adf(value: Any) -> bool:
    return isinstance(value, dict) and value.get("type") == "doc" and "content" in value


def _fields(issue: Issue, wanted: set[str]) -> dict[str, Any]:
    everything = {
        "summary": issue.summary,
        "description": issue.description,
        "labels": list(issue.labels),
        "status": issue.status,
        "issuetype": {"name": issue.issue_type},
        "project": {"key": PROJECT},
        "created": issue.created.isoformat(timespec="milliseconds"),
        "comment": {
            "comments": issue.comments,
            "startAt": 0,
            "maxResults": len(issue.comments),
            "total": len(issue.comments),
        },
    }
    if "*all" in wanted:
        return everything
    return {name: value for name, value in everything.items() if name in wanted}


def _issue_json(issue: Issue, wanted: set[str], base_url: str) -> dict[str, Any]:
    return {
        "id": issue.id,
        "key": issue.key,
        "self": f"{base_url}{API}/issue/{issue.id}",
        "fields": _fields(issue, wanted),
    }


def _match_jql(jql: str) -> tuple[dict[str, str], bool]:
    """The JQL subset Garrison sends: `a = "x" AND b = "y" [ORDER BY created ASC|DESC]`."""
    where, _, order = jql.partition(" ORDER BY ")
    descending = order.strip().lower().endswith("desc")
    clauses: dict[str, str] = {}
    for part in re.split(r"\s+AND\s+", where.strip(), flags=re.IGNORECASE):
        match = _CLAUSE.fullmatch(part)
        if match is None or match.group(1).lower() not in ("project", "labels"):
            raise JiraError(400, [f"Error in the JQL Query: cannot parse {part.strip()!r}."])
        clauses[match.group(1).lower()] = re.sub(r"\\(.)", r"\1", match.group(2))
    return clauses, descending


def _check_auth(request: Request, write: bool) -> None:
    header = request.headers.get("authorization", "")
    scheme, _, encoded = header.partition(" ")
    try:
        email, _, token = base64.b64decode(encoded).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        email, token = "", ""
    if scheme.lower() != "basic" or token != API_TOKEN or email not in (EMAIL, VIEWER_EMAIL):
        raise JiraError(401, ["Client must be authenticated to access this resource."])
    if write and email == VIEWER_EMAIL:
        raise JiraError(403, ["You do not have permission to perform this operation."])


async def _json(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        raise JiraError(400, ["Unexpected character in the request body."]) from None
    if not isinstance(body, dict):
        raise JiraError(400, ["The request body must be a JSON object."])
    return body


def build_app(world: JiraWorld, state: EmulatorState) -> FastAPI:
    app = FastAPI()

    @app.exception_handler(JiraError)
    async def jira_error(request: Request, error: JiraError) -> Response:
        body = {"errorMessages": error.messages, "errors": error.errors}
        return JSONResponse(body, status_code=error.status)

    def base(request: Request) -> str:
        return str(request.base_url).rstrip("/")

    @app.post(f"{API}/issue", status_code=201)
    async def create_issue(request: Request) -> Response:
        _check_auth(request, write=True)
        fields = (await _json(request)).get("fields") or {}
        errors: dict[str, str] = {}
        if (fields.get("project") or {}).get("key") != PROJECT:
            errors["project"] = "Specify a valid project ID or key"
        if not str(fields.get("summary") or "").strip():
            errors["summary"] = "You must specify a summary of the issue."
        elif "\n" in fields["summary"] or len(fields["summary"]) > 255:
            errors["summary"] = "Summary must be one line of less than 255 characters."
        issue_type = (fields.get("issuetype") or {}).get("name")
        if issue_type not in ISSUE_TYPES:
            errors["issuetype"] = "Specify an issue type"
        if "description" in fields and not _is_adf(fields["description"]):
            errors["description"] = "Operation value must be an Atlassian Document (see ADF)."
        labels = fields.get("labels") or []
        if any(not isinstance(x, str) or " " in x or len(x) > 255 for x in labels):
            errors["labels"] = "A label cannot contain spaces or exceed 255 characters."
        if errors:
            raise JiraError(400, [], errors)
        world.next_id += 1
        key = f"{PROJECT}-{world.next_id - 10000}"
        world.issues[key] = Issue(
            id=str(world.next_id),
            key=key,
            summary=fields["summary"],
            description=fields.get("description"),
            labels=list(labels),
            issue_type=str(issue_type),
            created=datetime.now(UTC),
            visible_at=time.monotonic() + state.faults.search_lag_s,
        )
        state.changed("create_issue", ",".join(labels) or key)
        if (dropped := await after_apply(state, "create_issue")) is not None:
            return dropped
        answer = {"id": str(world.next_id), "key": key, "self": f"{base(request)}{API}/issue/{key}"}
        return JSONResponse(answer, status_code=201)

    @app.get(f"{API}/issue/{{key}}")
    async def get_issue(request: Request, key: str, fields: str = "*all") -> Response:
        _check_auth(request, write=False)
        issue = world.get(key)
        return JSONResponse(_issue_json(issue, set(fields.split(",")), base(request)))

    @app.get(f"{API}/issue/{{key}}/comment")
    async def get_comments(
        request: Request, key: str, startAt: int = 0, maxResults: int = 50
    ) -> Response:
        _check_auth(request, write=False)
        comments = world.get(key).comments
        page = comments[startAt : startAt + min(maxResults, 100)]
        body = {
            "startAt": startAt,
            "maxResults": min(maxResults, 100),
            "total": len(comments),
            "comments": page,
        }
        return JSONResponse(body)

    def add_comment(issue: Issue, body: Any, request: Request) -> dict[str, Any]:
        if not _is_adf(body):
            raise JiraError(400, [], {"comment": "Comment body must be an Atlassian Document."})
        comment_id = str(10000 + sum(len(i.comments) for i in world.issues.values()))
        comment = {
            "id": comment_id,
            "self": f"{base(request)}{API}/issue/{issue.id}/comment/{comment_id}",
            "author": {"emailAddress": EMAIL, "displayName": "Garrison"},
            "body": body,
            "created": _now(),
            "updated": _now(),
        }
        issue.comments.append(comment)
        return comment

    @app.post(f"{API}/issue/{{key}}/comment", status_code=201)
    async def post_comment(request: Request, key: str) -> Response:
        _check_auth(request, write=True)
        issue = world.get(key)
        comment = add_comment(issue, (await _json(request)).get("body"), request)
        state.changed("add_comment", f"{issue.key}#{digest(comment['body'])}")
        if (dropped := await after_apply(state, "add_comment")) is not None:
            return dropped
        return JSONResponse(comment, status_code=201)

    @app.get(f"{API}/issue/{{key}}/transitions")
    async def get_transitions(request: Request, key: str) -> Response:
        _check_auth(request, write=False)
        issue = world.get(key)
        available = [
            {"id": tid, "name": name, "to": to, "hasScreen": False, "isGlobal": True}
            for tid, (name, to) in TRANSITIONS.items()
            if to["id"] != issue.status["id"]
        ]
        return JSONResponse({"expand": "transitions", "transitions": available})

    @app.post(f"{API}/issue/{{key}}/transitions", status_code=204)
    async def transition_issue(request: Request, key: str) -> Response:
        _check_auth(request, write=True)
        issue = world.get(key)
        body = await _json(request)
        tid = str((body.get("transition") or {}).get("id", ""))
        if tid not in TRANSITIONS:
            raise JiraError(400, [f"Transition id '{tid}' is not valid for this issue."])
        target = TRANSITIONS[tid][1]
        if target["id"] == issue.status["id"]:
            if state.faults.already_in_state_error:
                raise JiraError(400, [f"Transition id '{tid}' is not valid for this issue."])
            return Response(status_code=204)
        for update in (body.get("update") or {}).get("comment") or []:
            add_comment(issue, (update.get("add") or {}).get("body"), request)
        issue.status = target
        state.changed("transition_issue", f"{issue.key}->{target['name']}")
        if (dropped := await after_apply(state, "transition_issue")) is not None:
            return dropped
        return Response(status_code=204)

    async def search(request: Request, query: Mapping[str, Any]) -> Response:
        _check_auth(request, write=False)
        clauses, descending = _match_jql(str(query.get("jql") or ""))
        fields = query.get("fields") or ["id"]
        wanted = set(fields.split(",") if isinstance(fields, str) else fields)
        now = time.monotonic()
        found = [
            issue
            for issue in world.issues.values()
            if issue.visible_at <= now
            and clauses.get("project", PROJECT).upper() == PROJECT
            and ("labels" not in clauses or clauses["labels"] in issue.labels)
        ]
        found.sort(key=lambda i: int(i.id), reverse=descending)
        start = int(query.get("nextPageToken") or 0)
        size = max(1, min(int(query.get("maxResults") or 50), 5000))
        page = found[start : start + size]
        body: dict[str, Any] = {
            "issues": [_issue_json(i, wanted, base(request)) for i in page],
            "isLast": start + size >= len(found),
        }
        if not body["isLast"]:
            body["nextPageToken"] = str(start + size)
        return JSONResponse(body)

    @app.get(f"{API}/search/jql")
    async def search_get(request: Request) -> Response:
        return await search(request, request.query_params)

    @app.post(f"{API}/search/jql")
    async def search_post(request: Request) -> Response:
        return await search(request, await _json(request))

    return app


def build_emulator(
    environment: Environment, events: Iterable[Mapping[str, Any]], state: EmulatorState
) -> ASGIApp:
    """A Jira site with one project (`SEC`) and no issues yet; the recording is not used."""
    del environment, events
    return FaultMiddleware(build_app(JiraWorld(), state), state)
