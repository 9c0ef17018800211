"""An emulator of the Okta Management API's users: `SSWS` token auth, users by id, login or
unambiguous login shortname, `search=profile.login sw|eq "..."` with `Link` paging, groups, the
lifecycle operations Garrison uses, sessions, Okta's error bodies (`errorCode`, `errorSummary`) and
its rate-limit headers (`X-Rate-Limit-*`, no Retry-After).

Every user starts ACTIVE with one live session. Effective transitions are counted in
`state.state_changes`; with `already_in_state_error` a repeated lifecycle operation gets Okta's 400
(E0000001) instead of a quiet success.
"""

from __future__ import annotations

import math
import re
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.types import ASGIApp

from tools.emulators.base import EmulatorState, FaultMiddleware, after_apply
from tools.identity.emulators import Person, ReshapeFaults, directory_people
from tools.models import Environment

EMULATOR_TOKEN = "00emulator-okta-api-token"  # noqa: S105  (the emulator's own, not a secret)
_SEARCH = re.compile(r'^\s*profile\.login\s+(sw|eq)\s+"([^"]*)"\s*$')


@dataclass
class OktaUser:
    id: str
    login: str
    status: str = "ACTIVE"
    groups: list[str] = field(default_factory=lambda: ["Everyone"])
    sessions: int = 1
    status_changed: str = field(default_factory=lambda: _now())

    def wire(self) -> dict[str, Any]:
        local = self.login.split("@", 1)[0]
        first, _, last = local.partition(".")
        return {
            "id": self.id,
            "status": self.status,
            "created": "2023-01-01T00:00:00.000Z",
            "activated": "2023-01-01T00:00:00.000Z",
            "statusChanged": self.status_changed,
            "lastLogin": None,
            "lastUpdated": self.status_changed,
            "passwordChanged": None,
            "type": {"id": "oty00000000000000000"},
            "profile": {
                "firstName": first.title(),
                "lastName": last.title() or first.title(),
                "mobilePhone": None,
                "secondEmail": None,
                "login": self.login,
                "email": self.login,
            },
            "credentials": {"provider": {"type": "OKTA", "name": "OKTA"}},
            "_links": {"self": {"href": f"/api/v1/users/{self.id}"}},
        }


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _error(status: int, code: str, summary: str, causes: list[str] | None = None) -> JSONResponse:
    return JSONResponse(
        {
            "errorCode": code,
            "errorSummary": summary,
            "errorLink": code,
            "errorId": f"oae{uuid.uuid4().hex[:19]}",
            "errorCauses": [{"errorSummary": c} for c in causes or []],
        },
        status_code=status,
    )


def _okta_fault(status: int, retry_after_s: float) -> tuple[dict[str, Any], dict[str, str]]:
    if status == 429:
        reset = math.ceil(time.time() + max(retry_after_s, 1.0))
        headers = {
            "X-Rate-Limit-Limit": "600",
            "X-Rate-Limit-Remaining": "0",
            "X-Rate-Limit-Reset": str(reset),
        }
        return _body("E0000047", "API call exceeded rate limit due to too many requests."), headers
    return _body("E0000009", "Internal Server Error"), {}


def _body(code: str, summary: str) -> dict[str, Any]:
    return {"errorCode": code, "errorSummary": summary, "errorLink": code, "errorCauses": []}


class OktaDirectory:
    """The emulator's state: users by id."""

    def __init__(self, people: list[Person]) -> None:
        self.users: dict[str, OktaUser] = {}
        for n, person in enumerate(people):
            user = OktaUser(id=f"00u{n:04d}{uuid.uuid4().hex[:13]}", login=person.login)
            if person.privileged:
                user.groups.append("Domain Admins")
            self.users[user.id] = user

    def find(self, key: str) -> OktaUser | None:
        """By id, login, or login shortname when unambiguous (as Okta's path parameter)."""
        if key in self.users:
            return self.users[key]
        lowered = key.lower()
        for user in self.users.values():
            if user.login == lowered:
                return user
        short = [u for u in self.users.values() if u.login.split("@", 1)[0] == lowered]
        return short[0] if len(short) == 1 else None


def build_world(
    environment: Environment, events: Iterable[Mapping[str, Any]], state: EmulatorState
) -> tuple[ASGIApp, OktaDirectory]:
    """The emulator and its directory (tests reach into the directory to stage races)."""
    del events  # Okta keeps no endpoint telemetry
    directory = OktaDirectory(directory_people(environment))
    app = FastAPI(title="Okta emulator")

    @app.middleware("http")
    async def check_token(request: Request, call_next: Any) -> Response:
        if request.headers.get("authorization") != f"SSWS {EMULATOR_TOKEN}":
            return _error(401, "E0000011", "Invalid token provided")
        return await call_next(request)

    def missing(key: str) -> JSONResponse:
        return _error(404, "E0000007", f"Not found: Resource not found: {key} (User)")

    @app.get("/api/v1/users")
    async def list_users(
        request: Request, search: str | None = None, limit: int = 200, after: str | None = None
    ) -> Response:
        users = sorted(directory.users.values(), key=lambda u: u.id)
        if search is not None:
            match = _SEARCH.match(search)
            if match is None:
                return _error(400, "E0000031", "Invalid search.", [f"search: {search}"])
            op, value = match.group(1), match.group(2).lower()
            users = [
                u for u in users if (u.login.startswith(value) if op == "sw" else u.login == value)
            ]
        if after is not None:
            users = [u for u in users if u.id > after]
        page, rest = users[: max(1, min(limit, 200))], users[max(1, min(limit, 200)) :]
        headers = {}
        if rest:  # absolute, on the org's own host, as Okta's Link headers are
            params = {"limit": str(limit), "after": page[-1].id}
            if search is not None:
                params["search"] = search
            headers["Link"] = f'<{request.url.replace_query_params(**params)}>; rel="next"'
        return JSONResponse([u.wire() for u in page], headers=headers)

    @app.get("/api/v1/users/{key}")
    async def get_user(key: str) -> Response:
        user = directory.find(key)
        return JSONResponse(user.wire()) if user else missing(key)

    @app.get("/api/v1/users/{key}/groups")
    async def user_groups(key: str) -> Response:
        user = directory.find(key)
        if user is None:
            return missing(key)
        return JSONResponse(
            [
                {
                    "id": f"00g{abs(hash(name)) % 10**17:017d}",
                    "type": "BUILT_IN" if name == "Everyone" else "APP_GROUP",
                    "profile": {"name": name, "description": None},
                }
                for name in user.groups
            ]
        )

    async def transition(
        key: str, op: str, allowed: set[str], target: str, body: dict[str, Any] | None = None
    ) -> Response:
        user = directory.find(key)
        if user is None:
            return missing(key)
        if user.status == target and not state.faults.already_in_state_error:
            return JSONResponse(body or {})
        if user.status not in allowed:
            return _error(
                400,
                "E0000001",
                "Api validation failed: status",
                [f"status: cannot {op} a user whose status is {user.status}"],
            )
        user.status, user.status_changed = target, _now()
        state.changed(op, user.login)
        dropped = await after_apply(state, op)
        if dropped is not None:
            return dropped
        return JSONResponse(body or {})

    @app.post("/api/v1/users/{key}/lifecycle/suspend")
    async def suspend(key: str) -> Response:
        return await transition(key, "suspend", {"ACTIVE"}, "SUSPENDED")

    @app.post("/api/v1/users/{key}/lifecycle/unsuspend")
    async def unsuspend(key: str) -> Response:
        return await transition(key, "unsuspend", {"SUSPENDED"}, "ACTIVE")

    @app.post("/api/v1/users/{key}/lifecycle/reset_password")
    async def reset_password(key: str, sendEmail: str = "true") -> Response:
        link = {"resetPasswordUrl": f"https://okta.emulator/reset_password/{uuid.uuid4().hex}"}
        body = {} if sendEmail.lower() == "true" else link
        allowed = {"ACTIVE", "PASSWORD_EXPIRED", "LOCKED_OUT", "RECOVERY"}
        return await transition(key, "reset_password", allowed, "RECOVERY", body)

    @app.delete("/api/v1/users/{key}/sessions")
    async def clear_sessions(key: str) -> Response:
        user = directory.find(key)
        if user is None:
            return missing(key)
        if user.sessions:
            user.sessions = 0
            state.changed("clear_sessions", user.login)
            dropped = await after_apply(state, "clear_sessions")
            if dropped is not None:
                return dropped
        return Response(status_code=204)

    return ReshapeFaults(FaultMiddleware(app, state), _okta_fault), directory


def build_emulator(
    environment: Environment, events: Iterable[Mapping[str, Any]], state: EmulatorState
) -> ASGIApp:
    return build_world(environment, events, state)[0]
