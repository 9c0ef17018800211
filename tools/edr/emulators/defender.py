"""An emulator of the Microsoft Defender for Endpoint API (and the Entra ID token endpoint) that
Garrison uses, seeded from a recorded incident.

State: machines, machine actions (created `Pending`, `Succeeded` when first polled), the Files
API's hashes, and the recording re-shaped as advanced-hunting rows of the Device* tables. Errors
answer in Defender's `{"error": {"code", "message", "target"}}` shape; with
`already_in_state_error` a repeated isolation gets `400 ActiveRequestAlreadyExists`. Hunting
answers the one KQL shape the adapter sends (table, DeviceId, Timestamp bounds, take). Microsoft
Graph's `GET /v1.0/security/alerts_v2` is served too (`graph_alerts.py`), behind the same token.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import parse_qs

from fastapi import FastAPI, Request
from starlette.datastructures import Headers
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from tools.edr.emulators.defender_world import LIVE, DefenderWorld, now, parse_time, run_script
from tools.edr.emulators.graph_alerts import add_graph_alert_routes
from tools.emulators.base import EmulatorState, FaultMiddleware, after_apply
from tools.models import Alert, Environment


def _error(status: int, code: str, message: str) -> JSONResponse:
    body = {"error": {"code": code, "message": message, "target": str(uuid.uuid4())}}
    return JSONResponse(body, status_code=status)


def build_app(world: DefenderWorld, state: EmulatorState) -> ASGIApp:
    app = FastAPI()
    faults = state.faults

    @app.post("/{tenant}/oauth2/v2.0/token")
    async def token(tenant: str, request: Request) -> Response:
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
        known = (form.get("client_id"), form.get("client_secret")) == (
            world.client_id,
            world.client_secret,
        )
        if tenant != world.tenant_id or not known or form.get("grant_type") != "client_credentials":
            body = {"error": "invalid_client", "error_description": "AADSTS7000215: Invalid client"}
            return JSONResponse(body, status_code=401)
        issued = uuid.uuid4().hex
        world.tokens[issued] = time.monotonic() + world.token_ttl_s
        world.tokens_issued += 1
        ttl = world.token_ttl_s
        body = {
            "token_type": "Bearer",
            "expires_in": ttl,
            "ext_expires_in": ttl,
            "access_token": issued,
        }
        return JSONResponse(body)

    @app.get("/api/machines")
    async def machines(request: Request) -> Response:
        spec = request.query_params.get("$filter", "")
        match = re.fullmatch(
            r"startswith\(computerDnsName,'([^']*)'\)|computerDnsName eq '([^']*)'", spec
        )
        if match is None:
            return _error(400, "InvalidRequestBody", f"Invalid filter {spec[:100]}")
        prefix, exact = match.group(1), match.group(2)
        found = [
            m
            for m in world.machines.values()
            if (prefix is not None and m["computerDnsName"].lower().startswith(prefix.lower()))
            or (exact is not None and m["computerDnsName"].lower() == exact.lower())
        ]
        return JSONResponse({"@odata.context": "$metadata#Machines", "value": found})

    @app.get("/api/vulnerabilities/{cve}/machineReferences")
    async def exposed_machines(cve: str) -> Response:
        if not re.fullmatch(r"CVE-\d{4}-\d{4,7}", cve, flags=re.IGNORECASE):
            return _error(404, "ResourceNotFound", f"Vulnerability {cve[:60]} was not found")
        exposed = [
            {k: m[k] for k in ("id", "computerDnsName", "osPlatform")} | {"rbacGroupName": None}
            for m in world.machines.values()
            if (m["id"], cve.upper()) not in world.patched
        ]
        context = "$metadata#Collection(Analytics.Contracts.PublicAPI.MachineReferenceDto)"
        return JSONResponse({"@odata.context": context, "value": exposed})

    @app.get("/api/machineactions")
    async def list_actions(request: Request) -> Response:
        match = re.fullmatch(r"machineId eq '([^']*)'", request.query_params.get("$filter", ""))
        if match is None:
            return _error(400, "InvalidRequestBody", "Invalid filter")
        # With `search_lag_s`, a new action shows in the list late (the list is eventually
        # consistent; the action itself is readable at once).
        lag, now = faults.search_lag_s, time.monotonic()
        found = [
            a
            for a in world.actions.values()
            if a["machineId"] == match.group(1) and now - world.created[a["id"]] >= lag
        ]
        return JSONResponse({"@odata.context": "$metadata#MachineActions", "value": found})

    @app.get("/api/machineactions/{action_id}")
    async def get_action(action_id: str) -> Response:
        action = world.actions.get(action_id)
        if action is None:
            return _error(404, "ResourceNotFound", f"Machine action {action_id} was not found")
        if action["status"] == "Pending":
            action["status"] = "Succeeded"
            action["lastUpdateDateTimeUtc"] = now()
        return JSONResponse(action)

    @app.post("/api/machines/{machine_id}/runliveresponse")
    async def live_response(machine_id: str, request: Request) -> Response:
        machine = world.machines.get(machine_id)
        if machine is None:
            return _error(404, "ResourceNotFound", f"Machine {machine_id} was not found")
        body = await request.json()
        params = {p["key"]: p["value"] for c in body.get("Commands", []) for p in c["params"]}
        match = re.fullmatch(r"-Action (\w+) -Target '([^']*)'", str(params.get("Args", "")))
        if params.get("ScriptName") != world.script_name or match is None:
            return _error(400, "InvalidRequestBody", "Unknown library script or arguments")
        answer, applied = run_script(world, machine_id, match.group(1), match.group(2))
        action = {
            "id": str(uuid.uuid4()),
            "type": "LiveResponse",
            "status": "Pending",
            "machineId": machine_id,
            "creationDateTimeUtc": now(),
            "commands": body.get("Commands", []),
        }
        world.actions[action["id"]] = action
        world.created[action["id"]] = time.monotonic()
        world.live_results[action["id"]] = {
            "script_name": world.script_name,
            "exit_code": 0,
            "script_output": answer,
            "script_errors": "",
            "sig": uuid.uuid4().hex,
        }
        if applied:
            state.changed("runliveresponse", machine_id)
            if (dropped := await after_apply(state, "runliveresponse")) is not None:
                return dropped
        return JSONResponse(action, status_code=201)

    @app.get("/api/machineactions/{action_id}/{link}")
    async def live_link(action_id: str, link: str, request: Request) -> Response:
        result = world.live_results.get(action_id)
        if link != "GetLiveResponseResultDownloadLink(index=0)" or result is None:
            return _error(404, "ResourceNotFound", "No live response result")
        url = f"{str(request.base_url).rstrip('/')}/_blob/{action_id}?sig={result['sig']}"
        return JSONResponse({"@odata.context": "$metadata#Edm.String", "value": url})

    @app.get("/_blob/{action_id}")
    async def blob(action_id: str, request: Request, sig: str = "") -> Response:
        """The pre-signed storage URL: it takes no bearer token (and refuses one)."""
        result = world.live_results.get(action_id)
        if result is None or sig != result["sig"] or "authorization" in request.headers:
            return JSONResponse({"error": "AuthenticationFailed"}, status_code=403)
        return JSONResponse({k: v for k, v in result.items() if k != "sig"})

    @app.post("/api/machines/{machine_id}/{verb}")
    async def machine_action(machine_id: str, verb: str, request: Request) -> Response:
        machine = world.machines.get(machine_id)
        if machine is None:
            return _error(404, "ResourceNotFound", f"Machine {machine_id} was not found")
        body = await request.json()
        kinds = {"isolate": "Isolate", "unisolate": "Unisolate"}
        kinds["StopAndQuarantineFile"] = "StopAndQuarantineFile"
        if verb not in kinds or not body.get("Comment"):
            return _error(400, "InvalidRequestBody", "Comment is required")
        if verb == "isolate" and body.get("IsolationType") not in ("Full", "Selective"):
            return _error(400, "InvalidRequestBody", "IsolationType must be Full or Selective")
        sha1 = str(body.get("Sha1", "")).lower()
        if verb == "StopAndQuarantineFile" and not re.fullmatch(r"[0-9a-f]{40}", sha1):
            return _error(400, "InvalidRequestBody", "Sha1 is required")
        if verb == "StopAndQuarantineFile":
            same = any(
                a["machineId"] == machine_id
                and a["type"] == "StopAndQuarantineFile"
                and a["status"] in LIVE
                and (a["relatedFileInfo"] or {}).get("fileIdentifier") == sha1
                for a in world.actions.values()
            )
        else:
            same = world.isolated(machine_id) == (verb == "isolate")
        if same and faults.already_in_state_error:
            return _error(400, "ActiveRequestAlreadyExists", "Action is already in progress")
        action = {
            "id": str(uuid.uuid4()),
            "type": kinds[verb],
            "requestor": "garrison-emulator",
            "requestorComment": body["Comment"],
            "status": "Succeeded" if same else "Pending",
            "machineId": machine_id,
            "computerDnsName": machine["computerDnsName"],
            "creationDateTimeUtc": now(),
            "lastUpdateDateTimeUtc": now(),
            "relatedFileInfo": {"fileIdentifier": sha1, "fileIdentifierType": "Sha1"}
            if sha1
            else None,
        }
        world.actions[action["id"]] = action
        world.created[action["id"]] = time.monotonic()
        if not same:
            state.changed(verb, sha1 or machine_id)
            if (dropped := await after_apply(state, verb)) is not None:
                return dropped
        return JSONResponse(action, status_code=201)

    @app.get("/api/files/{identifier}")
    async def get_file(identifier: str) -> Response:
        found = world.files.get(identifier.lower())
        if found is None:
            return _error(404, "ResourceNotFound", f"File {identifier} was not found")
        return JSONResponse(found)

    @app.post("/api/advancedqueries/run")
    async def hunt(request: Request) -> Response:
        query = str((await request.json()).get("Query", ""))
        table = query.split("\n", 1)[0].strip()
        if table not in world.rows and table not in _TABLES:
            return _error(400, "BadRequest", f"Failed to resolve table '{table[:50]}'")
        device = re.search(r'DeviceId == "([0-9a-f]{40})"', query)
        start = re.search(r"Timestamp >= datetime\(([^)]*)\)", query)
        end = re.search(r"Timestamp <= datetime\(([^)]*)\)", query)
        take = re.search(r"\| take (\d+)", query)
        actions = re.search(r"\| where ActionType in \(([^)]*)\)", query)
        wanted = set(re.findall(r'"(\w+)"', actions.group(1))) if actions else None
        rows = [
            r
            for r in world.rows.get(table, [])
            if device is not None
            and r["DeviceId"] == device.group(1)
            and (start is None or parse_time(r["Timestamp"]) >= parse_time(start.group(1)))
            and (end is None or parse_time(r["Timestamp"]) <= parse_time(end.group(1)))
            and (wanted is None or r.get("ActionType") in wanted)
        ]
        rows.sort(key=lambda r: parse_time(r["Timestamp"]))
        rows = rows[: int(take.group(1)) if take else 10_000]
        schema = [{"Name": k, "Type": "String"} for k in (rows[0] if rows else {})]
        return JSONResponse({"Schema": schema, "Results": rows})

    add_graph_alert_routes(app, world)
    return _BearerCheck(app, world)


_TABLES = (
    "DeviceProcessEvents",
    "DeviceNetworkEvents",
    "DeviceLogonEvents",
    "DeviceRegistryEvents",
    "DeviceFileEvents",
    "DeviceEvents",
)


class _BearerCheck:
    """Defender's token check on `/api/*` (and Graph's on `/v1.0/*`): 401 with an error body."""

    def __init__(self, app: ASGIApp, world: DefenderWorld) -> None:
        self.app = app
        self.world = world

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(("/api/", "/v1.0/")):
            header = Headers(scope=scope).get("authorization", "")
            token = header.removeprefix("Bearer ").strip()
            if self.world.tokens.get(token, 0.0) <= time.monotonic():
                denied = _error(401, "Unauthorized", "Authorization token is invalid or expired")
                await denied(scope, receive, send)
                return
        await self.app(scope, receive, send)


def build_emulator(
    environment: Environment,
    events: Iterable[Mapping[str, Any]],
    state: EmulatorState,
    alerts: Iterable[Alert] = (),
) -> ASGIApp:
    world = DefenderWorld.seed(environment, events, alerts)
    return FaultMiddleware(build_app(world, state), state)
