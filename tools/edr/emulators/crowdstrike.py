"""An emulator of the CrowdStrike Falcon APIs Garrison uses, seeded from a recorded incident.

It keeps real state (device containment, running processes, the quarantine store, removed
persistence, CVEs patched), checks OAuth2 bearer tokens the way Falcon does (401 with an
`errors` body), and answers in Falcon's envelope `{"meta", "resources", "errors"}`. Telemetry
is served through Next-Gen SIEM query jobs over Falcon-shaped sensor events; relative search
starts (`7d`) cover the whole recording, whose clock is not now. Persistence artefacts are
present until removed, as in the in-memory twin, and every CVE is open on every device until
the RTR admin `runscript` of the patch script closes it (Spotlight answers accordingly). Alerts
are served by the Alerts API v2 (`falcon_alerts.py`).
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

from tools.edr.emulators.crowdstrike_world import FalconWorld
from tools.edr.emulators.falcon_alerts import add_alert_routes
from tools.emulators.base import EmulatorState, FaultMiddleware, after_apply
from tools.models import Alert, Environment

_CONTAINED = ("contained", "containment_pending")
__all__ = ["FalconWorld", "build_app", "build_emulator"]
_READ_ONLY = {"ps", "reg query", "ls"}
_ACTIVE = _READ_ONLY | {"kill", "reg delete", "rm"}
_ADMIN = _ACTIVE | {"runscript", "put", "run"}
_RUNSCRIPT = re.compile(
    r'runscript -CloudFile="([^"]+)" -CommandLine="-Action (apply|revert) -Cve (\S+) '
    r'-Remediation (\S+)"'
)
_SPOTLIGHT = re.compile(r"aid:'([0-9a-f]{32})'\+cve\.id:'([^']+)'\+status:\['open','reopen'\]")
_ARG = re.compile(r'"([^"]*)"|(\S+)')


def _envelope(resources: list[Any], errors: list[dict[str, Any]], status: int) -> JSONResponse:
    meta = {"query_time": 0.001, "powered_by": "garrison-emulator", "trace_id": str(uuid.uuid4())}
    return JSONResponse(
        {"meta": meta, "resources": resources, "errors": errors}, status_code=status
    )


def _ok(resources: list[Any], status: int = 200) -> JSONResponse:
    return _envelope(resources, [], status)


def _error(status: int, message: str) -> JSONResponse:
    return _envelope([], [{"code": status, "message": message}], status)


def build_app(world: FalconWorld, state: EmulatorState) -> ASGIApp:
    app = FastAPI()
    faults = state.faults

    @app.post("/oauth2/token")
    async def token(request: Request) -> Response:
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
        if (form.get("client_id"), form.get("client_secret")) != (
            world.client_id,
            world.client_secret,
        ):
            return _error(401, "access denied, invalid client credentials")
        issued = uuid.uuid4().hex
        world.tokens[issued] = time.monotonic() + world.token_ttl_s
        world.tokens_issued += 1
        body = {"access_token": issued, "token_type": "bearer", "expires_in": world.token_ttl_s}
        return JSONResponse(body, status_code=201)

    @app.get("/devices/queries/devices/v1")
    async def query_devices(filter: str = "", limit: int = 100) -> Response:
        match = re.fullmatch(r"hostname:(?:\[(.*)\]|('[^']*'))", filter.strip())
        if match is None:
            return _error(400, f"Invalid filter: {filter[:100]}")
        names = {n.lower() for n in re.findall(r"'([^']*)'", match.group(1) or match.group(2))}
        ids = [d.device_id for d in world.devices.values() if d.hostname.lower() in names]
        return _ok(ids[:limit])

    @app.get("/devices/entities/devices/v2")
    async def get_devices(request: Request) -> Response:
        ids = request.query_params.getlist("ids")
        found = [world.devices[i].shown(faults.search_lag_s) for i in ids if i in world.devices]
        return _ok(found) if found else _error(404, "Device not found")

    @app.post("/devices/entities/devices-actions/v2")
    async def device_action(request: Request, action_name: str = "") -> Response:
        ids = (await request.json()).get("ids") or []
        if action_name not in ("contain", "lift_containment"):
            return _error(400, f"invalid action_name {action_name!r}")
        devices = [world.devices.get(i) for i in ids]
        if not devices or None in devices:
            return _error(404, "Device not found")
        applied = False
        for device in filter(None, devices):
            contained = device.status in _CONTAINED
            if contained == (action_name == "contain"):
                if faults.already_in_state_error:
                    word = "contained" if contained else "not contained"
                    return _error(409, f"Device {device.device_id} is already {word}")
                continue
            device.previous_status, device.changed_at = device.status, time.monotonic()
            device.status = "contained" if action_name == "contain" else "normal"
            state.changed(action_name, device.device_id)
            applied = True
        if applied and (dropped := await after_apply(state, action_name)) is not None:
            return dropped
        return _ok([{"id": i, "path": ""} for i in ids], 202)

    @app.post("/humio/api/v1/repositories/{repository}/queryjobs")
    async def start_search(repository: str, request: Request) -> Response:
        body = await request.json()
        job_id = f"P{uuid.uuid4().hex[:20]}"
        world.jobs[job_id] = _search(world, body)
        return JSONResponse({"id": job_id, "hashedQueryOnView": uuid.uuid4().hex})

    @app.get("/humio/api/v1/repositories/{repository}/queryjobs/{job_id}")
    async def poll_search(repository: str, job_id: str) -> Response:
        if job_id not in world.jobs:
            return JSONResponse({"error": "No query with id"}, status_code=404)
        events = world.jobs[job_id]
        meta = {"eventCount": len(events), "isAggregate": False, "pollAfter": 0}
        return JSONResponse({"done": True, "cancelled": False, "events": events, "metaData": meta})

    @app.post("/real-time-response/entities/sessions/v1")
    async def open_session(request: Request) -> Response:
        device_id = str((await request.json()).get("device_id", ""))
        if device_id not in world.devices:
            return _error(404, "Could not find sensor")
        session_id = str(uuid.uuid4())
        world.sessions[session_id] = device_id
        return _ok([{"session_id": session_id, "scripts": [], "offline_queued": False}], 201)

    async def run(request: Request, allowed: set[str]) -> Response:
        body = await request.json()
        session_id, base = str(body.get("session_id", "")), str(body.get("base_command", ""))
        device_id = world.sessions.get(session_id)
        if device_id is None or device_id != body.get("device_id"):
            return _error(404, "session not found")
        if base not in allowed:
            return _error(400, f"{base!r} is not allowed on this endpoint")
        stdout, stderr, op = _execute(world, device_id, base, str(body.get("command_string", "")))
        request_id = str(uuid.uuid4())
        world.commands[request_id] = {
            "session_id": session_id,
            "task_id": request_id,
            "complete": True,
            "stdout": stdout,
            "stderr": stderr,
            "base_command": base,
        }
        if op is not None:
            state.changed(op, device_id)
            if (dropped := await after_apply(state, op)) is not None:
                return dropped
        queued = {"session_id": session_id, "cloud_request_id": request_id}
        return _ok([{**queued, "queued_command_offline": False}], 201)

    def result(cloud_request_id: str) -> Response:
        found = world.commands.get(cloud_request_id)
        return _ok([found]) if found else _error(404, "cloud request not found")

    @app.post("/real-time-response/entities/command/v1")
    async def read_only_command(request: Request) -> Response:
        return await run(request, _READ_ONLY)

    @app.get("/real-time-response/entities/command/v1")
    async def read_only_result(cloud_request_id: str, sequence_id: int = 0) -> Response:
        return result(cloud_request_id)

    @app.post("/real-time-response/entities/active-responder-command/v1")
    async def active_command(request: Request) -> Response:
        return await run(request, _ACTIVE)

    @app.get("/real-time-response/entities/active-responder-command/v1")
    async def active_result(cloud_request_id: str, sequence_id: int = 0) -> Response:
        return result(cloud_request_id)

    @app.post("/real-time-response/entities/admin-command/v1")
    async def admin_command(request: Request) -> Response:
        return await run(request, _ADMIN)

    @app.get("/real-time-response/entities/admin-command/v1")
    async def admin_result(cloud_request_id: str, sequence_id: int = 0) -> Response:
        return result(cloud_request_id)

    @app.get("/spotlight/combined/vulnerabilities/v1")
    async def spotlight(filter: str = "", limit: int = 100) -> Response:
        match = _SPOTLIGHT.fullmatch(filter.strip())
        if match is None:
            return _error(400, f"Invalid filter: {filter[:100]}")
        aid, cve = match.group(1), match.group(2).upper()
        if aid not in world.devices or (aid, cve) in world.patched:
            return _ok([])
        record = {
            "id": f"{aid}_{uuid.uuid5(uuid.NAMESPACE_URL, cve).hex}",
            "cid": world.cid,
            "aid": aid,
            "status": "open",
            "cve": {"id": cve, "severity": "CRITICAL", "exploit_status": 90},
        }
        return _ok([record][:limit])

    @app.post("/quarantine/entities/quarantined-files/GET/v1")
    async def get_quarantined(request: Request) -> Response:
        ids = (await request.json()).get("ids") or []
        found = [world.quarantine[i] for i in ids if i in world.quarantine]
        return _ok(found) if found else _error(404, "Quarantined file not found")

    @app.patch("/quarantine/entities/quarantined-files/v1")
    async def update_quarantined(request: Request) -> Response:
        body = await request.json()
        action, ids = body.get("action"), body.get("ids") or []
        wanted = {"release": "released", "unrelease": "quarantined", "delete": "deleted"}
        if action not in wanted or not all(i in world.quarantine for i in ids):
            return _error(400, "invalid action or ids")
        applied = False
        for record_id in ids:
            if world.quarantine[record_id]["state"] != wanted[action]:
                world.quarantine[record_id]["state"] = wanted[action]
                state.changed(str(action), record_id)
                applied = True
        if applied and (dropped := await after_apply(state, str(action))) is not None:
            return dropped
        return _ok([{"id": i} for i in ids])

    add_alert_routes(app, world)
    return _BearerCheck(app, world)


class _BearerCheck:
    """Falcon's token check, before any route: 401 with an `errors` body. (A pure ASGI wrapper,
    so responses are not re-streamed.)"""

    def __init__(self, app: ASGIApp, world: FalconWorld) -> None:
        self.app = app
        self.world = world

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] != "/oauth2/token":
            header = Headers(scope=scope).get("authorization", "")
            token = header.removeprefix("Bearer ").strip()
            expiry = self.world.tokens.get(token, 0.0)
            if not header.startswith("Bearer ") or expiry <= time.monotonic():
                await _error(401, "access denied, invalid bearer token")(scope, receive, send)
                return
        await self.app(scope, receive, send)


def build_emulator(
    environment: Environment,
    events: Iterable[Mapping[str, Any]],
    state: EmulatorState,
    alerts: Iterable[Alert] = (),
) -> ASGIApp:
    world = FalconWorld.seed(environment, events, alerts)
    return FaultMiddleware(build_app(world, state), state)


def _search(world: FalconWorld, body: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Answers the one query shape the adapter sends: an aid, event names, a sorted limit."""
    query = str(body.get("queryString", ""))
    aid = re.search(r"\baid=([0-9a-f]{32})\b", query)
    names = set(re.findall(r'"(\w+)"', (re.search(r"values=\[([^\]]*)\]", query) or [""])[0]))
    limit = re.search(r"limit=(\d+)", query)
    start, end = body.get("start"), body.get("end")
    rows = [
        e
        for e in world.events
        if aid is not None
        and e["aid"] == aid.group(1)
        and e["#event_simpleName"] in names
        and (not isinstance(start, int) or e["@timestamp"] >= start)
        and (not isinstance(end, int) or e["@timestamp"] <= end)
    ]
    rows.sort(key=lambda e: e["@timestamp"])
    return rows[: int(limit.group(1)) if limit else 200]


def _execute(
    world: FalconWorld, device_id: str, base: str, command: str
) -> tuple[str, str, str | None]:
    """Runs an RTR command: (stdout, stderr, the op it applied or None)."""
    if base == "runscript":
        return _runscript(world, device_id, command)
    if base in ("put", "run"):
        return "", f"{base}: no such file in the emulator", None
    args = [a or b for a, b in _ARG.findall(command)][len(base.split()) :]
    running = world.running.setdefault(device_id, {})
    if base == "ps":
        rows = [f"{name:<40} {pid:>8}" for pid, name in sorted(running.items())]
        return "\n".join(["Name                                           Id", *rows]), "", None
    if base == "kill":
        pid = int(args[0]) if args and args[0].isdigit() else -1
        if pid not in running:
            return "", f"Cannot find a process with the process identifier {pid}.", None
        del running[pid]
        return f"Process {pid} killed", "", "kill"
    artefact = "\\".join(args).lower() if base.startswith("reg") else " ".join(args).lower()
    gone = (device_id, artefact) in world.removed
    missing = "The system was unable to find the specified registry key or value."
    if base in ("reg query", "ls"):
        return ("", missing, None) if gone else (f"{' '.join(args)}\n", "", None)
    if gone:
        return "", missing, None
    world.removed.add((device_id, artefact))
    return "The operation completed successfully.", "", base.replace(" ", "_")


def _runscript(world: FalconWorld, device_id: str, command: str) -> tuple[str, str, str | None]:
    """The `garrison-patch` cloud script: closes (apply) or re-opens (revert) the CVE."""
    match = _RUNSCRIPT.fullmatch(command.strip())
    if match is None or match.group(1) != world.patch_script:
        return "", f"runscript: unknown cloud file or arguments: {command[:100]}", None
    verb, key = match.group(2), (device_id, match.group(3).upper())
    if (verb == "apply") == (key in world.patched):
        return f"nothing to do: {match.group(4)}", "", None
    (world.patched.add if verb == "apply" else world.patched.discard)(key)
    return f"{verb} {match.group(4)}: done", "", "patch" if verb == "apply" else "unpatch"
