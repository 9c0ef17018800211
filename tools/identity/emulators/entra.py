"""An emulator of Microsoft Entra ID as Graph v1.0 shows it: the identity platform's client
credentials token endpoint (`/{tenant}/oauth2/v2.0/token`), bearer tokens that expire, users by
id or userPrincipalName with `$select`, `$filter=startswith(userPrincipalName,'...')` with
`@odata.nextLink` paging, `memberOf`, PATCH of `accountEnabled` and `passwordProfile`,
`revokeSignInSessions`, Graph's error body (`{"error": {"code", "message"}}`) and 429 with
Retry-After.

Every user starts enabled with one live session; privileged identities are members of the synced
group "Domain Admins". Graph has no "already in that state" error (a PATCH to the current value
succeeds), so `already_in_state_error` changes nothing here.
"""

from __future__ import annotations

import re
import secrets
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.types import ASGIApp

from tools.emulators.base import EmulatorState, FaultMiddleware, after_apply
from tools.identity.emulators import Person, ReshapeFaults, directory_people
from tools.models import Environment

TENANT_ID = "00000000-0000-0000-0000-00000000e1a0"
CLIENT_ID = "11111111-1111-1111-1111-111111111111"
CLIENT_SECRET = "emulator~client~secret"  # noqa: S105  (the emulator's own)
SCOPE = "https://graph.microsoft.com/.default"
_FILTER = re.compile(r"^startswith\(userPrincipalName,'((?:[^']|'')*)'\)$", re.IGNORECASE)
_GRAPH = "https://graph.microsoft.com/v1.0/$metadata"


@dataclass
class GraphUser:
    id: str
    upn: str
    sam: str
    domain: str | None
    enabled: bool = True
    force_change: bool = False
    sessions: int = 1
    valid_from: str = "2023-01-01T00:00:00Z"
    groups: list[str] = field(default_factory=list)

    def wire(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "userPrincipalName": self.upn,
            "displayName": self.sam.replace(".", " ").title(),
            "mail": self.upn,
            "accountEnabled": self.enabled,
            "onPremisesSamAccountName": self.sam if self.domain else None,
            "onPremisesDomainName": self.domain,
            "onPremisesSyncEnabled": bool(self.domain),
            "passwordProfile": {
                "password": None,
                "forceChangePasswordNextSignIn": self.force_change,
            },
            "signInSessionsValidFromDateTime": self.valid_from,
        }


class GraphWorld:
    """The emulator's state: users, and the access tokens it issued with their expiry."""

    def __init__(self, people: list[Person], token_lifetime_s: int = 3599) -> None:
        self.users: dict[str, GraphUser] = {}
        for person in people:
            user = GraphUser(
                id=str(uuid.uuid4()),
                upn=person.login,
                sam=person.user.lower(),
                domain=person.dns_domain if person.netbios else None,
            )
            if person.privileged:
                user.groups.append("Domain Admins")
            self.users[user.id] = user
        self.tokens: dict[str, float] = {}
        self.token_lifetime_s = token_lifetime_s
        self.tokens_issued = 0

    def expire_tokens(self) -> None:
        self.tokens = dict.fromkeys(self.tokens, 0.0)

    def find(self, key: str) -> GraphUser | None:
        lowered = key.lower()
        return self.users.get(lowered) or next(
            (u for u in self.users.values() if u.upn == lowered), None
        )


def _error(status: int, code: str, message: str) -> JSONResponse:
    inner = {
        "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S"),
        "request-id": str(uuid.uuid4()),
    }
    return JSONResponse(
        {"error": {"code": code, "message": message, "innerError": inner}}, status_code=status
    )


def _graph_fault(status: int, retry_after_s: float) -> tuple[dict[str, Any], dict[str, str]]:
    if status == 429:
        body = {"error": {"code": "TooManyRequests", "message": "Too many requests."}}
        return body, {"Retry-After": str(int(retry_after_s))}
    return {"error": {"code": "serviceNotAvailable", "message": "Service unavailable."}}, {}


def _select(user: GraphUser, select: str | None) -> dict[str, Any]:
    wire = user.wire()
    if select:
        wire = {k: wire.get(k) for k in select.split(",")}
    return {"@odata.context": f"{_GRAPH}#users/$entity", **wire}


def build_world(
    environment: Environment, events: Iterable[Mapping[str, Any]], state: EmulatorState
) -> tuple[ASGIApp, GraphWorld]:
    """The emulator and its state (tests reach into it to expire tokens)."""
    del events  # Entra keeps no endpoint telemetry
    world = GraphWorld(directory_people(environment))
    app = FastAPI(title="Microsoft Graph (Entra ID) emulator")

    @app.middleware("http")
    async def check_bearer(request: Request, call_next: Any) -> Response:
        if request.url.path.startswith("/v1.0/"):
            scheme, _, token = request.headers.get("authorization", "").partition(" ")
            if scheme.lower() != "bearer" or world.tokens.get(token, 0.0) <= time.monotonic():
                return _error(
                    401,
                    "InvalidAuthenticationToken",
                    "Access token has expired or is not yet valid.",
                )
        return await call_next(request)

    @app.post("/{tenant}/oauth2/v2.0/token")
    async def token(tenant: str, request: Request) -> Response:
        # Parsed by hand: form parsing in Starlette needs python-multipart.
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
        if tenant != TENANT_ID:
            return JSONResponse(
                {
                    "error": "invalid_request",
                    "error_description": f"AADSTS90002: Tenant '{tenant}' not found.",
                },
                status_code=400,
            )
        if form.get("grant_type") != "client_credentials" or form.get("scope") != SCOPE:
            return JSONResponse(
                {
                    "error": "invalid_scope",
                    "error_description": "AADSTS1002012: bad grant or scope",
                },
                status_code=400,
            )
        if form.get("client_id") != CLIENT_ID or form.get("client_secret") != CLIENT_SECRET:
            return JSONResponse(
                {
                    "error": "invalid_client",
                    "error_description": "AADSTS7000215: Invalid client secret provided.",
                },
                status_code=401,
            )
        issued = secrets.token_urlsafe(24)
        world.tokens[issued] = time.monotonic() + world.token_lifetime_s
        world.tokens_issued += 1
        lifetime = world.token_lifetime_s
        return JSONResponse(
            {
                "token_type": "Bearer",
                "expires_in": lifetime,
                "ext_expires_in": lifetime,
                "access_token": issued,
            }
        )

    def missing(key: str) -> JSONResponse:
        return _error(
            404,
            "Request_ResourceNotFound",
            f"Resource '{key}' does not exist or one of its queried reference-property objects "
            "are not present.",
        )

    @app.get("/v1.0/users")
    async def list_users(request: Request) -> Response:
        query = request.query_params
        users = sorted(world.users.values(), key=lambda u: u.upn)
        if (wanted := query.get("$filter")) is not None:
            match = _FILTER.match(wanted.strip())
            if match is None:
                return _error(400, "Request_UnsupportedQuery", "Unsupported query.")
            prefix = match.group(1).replace("''", "'").lower()
            users = [u for u in users if u.upn.startswith(prefix)]
        skip = int(query.get("$skiptoken", "0"))
        top = int(query.get("$top", "100"))
        page = users[skip : skip + top]
        body: dict[str, Any] = {
            "@odata.context": f"{_GRAPH}#users",
            "value": [_select(u, query.get("$select")) for u in page],
        }
        if skip + top < len(users):
            body["@odata.nextLink"] = str(
                request.url.include_query_params(**{"$skiptoken": skip + top})
            )
        return JSONResponse(body)

    @app.get("/v1.0/users/{key}")
    async def get_user(key: str, request: Request) -> Response:
        user = world.find(key)
        return (
            JSONResponse(_select(user, request.query_params.get("$select")))
            if user
            else missing(key)
        )

    @app.get("/v1.0/users/{key}/memberOf")
    async def member_of(key: str) -> Response:
        user = world.find(key)
        if user is None:
            return missing(key)
        groups = [
            {
                "@odata.type": "#microsoft.graph.group",
                "id": str(uuid.uuid5(uuid.NAMESPACE_DNS, g)),
                "displayName": g,
            }
            for g in user.groups
        ]
        return JSONResponse({"@odata.context": f"{_GRAPH}#directoryObjects", "value": groups})

    @app.patch("/v1.0/users/{key}")
    async def update_user(key: str, request: Request) -> Response:
        user = world.find(key)
        if user is None:
            return missing(key)
        body = await request.json()
        changed = False
        if "accountEnabled" in body and body["accountEnabled"] is not user.enabled:
            user.enabled, changed = bool(body["accountEnabled"]), True
        force = (body.get("passwordProfile") or {}).get("forceChangePasswordNextSignIn")
        if force is not None and bool(force) is not user.force_change:
            user.force_change, changed = bool(force), True
        if changed:
            state.changed("update_user", user.upn)
            dropped = await after_apply(state, "update_user")
            if dropped is not None:
                return dropped
        return Response(status_code=204)

    @app.post("/v1.0/users/{key}/revokeSignInSessions")
    async def revoke(key: str) -> Response:
        user = world.find(key)
        if user is None:
            return missing(key)
        user.valid_from = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        if user.sessions:
            user.sessions = 0
            state.changed("revoke_sign_in_sessions", user.upn)
            dropped = await after_apply(state, "revoke_sign_in_sessions")
            if dropped is not None:
                return dropped
        return JSONResponse({"@odata.context": f"{_GRAPH}#Edm.Boolean", "value": True})

    return ReshapeFaults(FaultMiddleware(app, state), _graph_fault), world


def build_emulator(
    environment: Environment, events: Iterable[Mapping[str, Any]], state: EmulatorState
) -> ASGIApp:
    return build_world(environment, events, state)[0]
