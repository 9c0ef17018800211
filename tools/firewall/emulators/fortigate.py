"""An emulator of the FortiOS REST API for firewall addresses and address groups
(`/api/v2/cmdb/firewall/address`, `/api/v2/cmdb/firewall/addrgrp/{name}`), per VDOM, with
FortiOS's auth (Bearer token or `access_token`) and its JSON envelope, errors included: creating
an existing object answers HTTP 500 with `"error": -5`, a missing one 404 with `-3`, deleting an
address still in a group 500 with `-23`.

Seeded with the environment's assets as addresses, and the block group holding the built-in
`none` address (FortiOS keeps groups non-empty) as a deny policy would reference it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp

from tools.emulators.base import EmulatorState, FaultMiddleware, after_apply
from tools.models import Environment

API_TOKEN = "emulated-fortigate-token"  # noqa: S105  (the emulator's own test credential)
SERIAL = "FGVMEVEMULATED01"


@dataclass
class FortiGateWorld:
    vdom: str = "root"
    address_group: str = "garrison-blocked"
    tokens: set[str] = field(default_factory=lambda: {API_TOKEN})
    addresses: dict[str, dict[str, Any]] = field(default_factory=dict)
    groups: dict[str, dict[str, Any]] = field(default_factory=dict)


def _seed(world: FortiGateWorld, environment: Environment) -> None:
    world.addresses["none"] = {
        "name": "none",
        "type": "ipmask",
        "subnet": "0.0.0.0 255.255.255.255",
    }
    for asset in environment.assets:
        for ip in asset.ips[:1]:
            world.addresses[asset.id] = {
                "name": asset.id,
                "type": "ipmask",
                "subnet": f"{ip} 255.255.255.255",
                "comment": asset.hostname or "",
            }
    world.groups[world.address_group] = {
        "name": world.address_group,
        "member": [{"name": "none", "q_origin_key": "none"}],
        "comment": "referenced by policy garrison-deny",
    }


def _envelope(request: Request, world: FortiGateWorld, status: int, **extra: Any) -> JSONResponse:
    path = request.url.path.removeprefix("/api/v2/cmdb/").split("/")
    body: dict[str, Any] = {
        "http_method": request.method,
        "http_status": status,
        "status": "success" if status < 400 else "error",
        "vdom": world.vdom,
        "path": path[0],
        "name": path[1] if len(path) > 1 else "",
        "serial": SERIAL,
        "version": "v7.2.8",
        "build": 1639,
        **extra,
    }
    return JSONResponse(body, status_code=status)


def _error(request: Request, world: FortiGateWorld, status: int, code: int) -> JSONResponse:
    return _envelope(request, world, status, error=code)


def _matches(name: str, spec: str | None) -> bool:
    """FortiOS `filter=name==x` (equals) and `filter=name=@x` (contains)."""
    if not spec:
        return True
    if spec.startswith("name=="):
        return name == spec[6:]
    if spec.startswith("name=@"):
        return spec[6:] in name
    return True


def build_emulator(
    environment: Environment,
    events: Iterable[Mapping[str, Any]],
    state: EmulatorState,
    world: FortiGateWorld | None = None,
) -> ASGIApp:
    world = world or FortiGateWorld()
    _seed(world, environment)
    app = FastAPI(title="FortiOS REST API (emulated)")

    def refused(request: Request) -> Response | None:
        bearer = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
        token = bearer or request.query_params.get("access_token", "")
        if token not in world.tokens:
            return Response(status_code=401)
        if request.query_params.get("vdom", "root") != world.vdom:
            return _error(request, world, 403, -37)
        return None

    @app.get("/api/v2/cmdb/firewall/address")
    async def list_addresses(request: Request) -> Response:
        if (answer := refused(request)) is not None:
            return answer
        spec = request.query_params.get("filter")
        results = [dict(a, q_origin_key=n) for n, a in world.addresses.items() if _matches(n, spec)]
        return _envelope(request, world, 200, results=results, size=len(results))

    @app.post("/api/v2/cmdb/firewall/address")
    async def create_address(request: Request) -> Response:
        if (answer := refused(request)) is not None:
            return answer
        body = await request.json()
        name = str(body.get("name", ""))
        if not name or body.get("type") not in ("ipmask", "fqdn"):
            return _error(request, world, 500, -651)  # invalid value
        if name in world.addresses:
            return _error(request, world, 500, -5)  # a duplicate entry already exists
        world.addresses[name] = {
            k: body[k] for k in ("name", "type", "subnet", "fqdn", "comment") if k in body
        }
        if (dropped := await after_apply(state, "create_address")) is not None:
            return dropped
        return _envelope(request, world, 200, mkey=name)

    @app.delete("/api/v2/cmdb/firewall/address/{name}")
    async def delete_address(name: str, request: Request) -> Response:
        if (answer := refused(request)) is not None:
            return answer
        if name not in world.addresses:
            return _error(request, world, 404, -3)
        if any(name in {m["name"] for m in g["member"]} for g in world.groups.values()):
            return _error(request, world, 500, -23)  # the entry is used by a group
        del world.addresses[name]
        if (dropped := await after_apply(state, "delete_address")) is not None:
            return dropped
        return _envelope(request, world, 200, mkey=name)

    @app.get("/api/v2/cmdb/firewall/addrgrp/{name}")
    async def get_group(name: str, request: Request) -> Response:
        if (answer := refused(request)) is not None:
            return answer
        if name not in world.groups:
            return _error(request, world, 404, -3)
        group = world.groups[name]
        return _envelope(request, world, 200, results=[dict(group, q_origin_key=name)], size=1)

    @app.put("/api/v2/cmdb/firewall/addrgrp/{name}")
    async def update_group(name: str, request: Request) -> Response:
        if (answer := refused(request)) is not None:
            return answer
        if name not in world.groups:
            return _error(request, world, 404, -3)
        body = await request.json()
        wanted = [str(m.get("name", "")) for m in body.get("member", []) if isinstance(m, dict)]
        if any(m not in world.addresses for m in wanted):
            return _error(request, world, 500, -3)  # a member that is not an address
        if not wanted:
            return _error(request, world, 500, -651)  # a group needs at least one member
        group = world.groups[name]
        before = {m["name"] for m in group["member"]}
        group["member"] = [{"name": m, "q_origin_key": m} for m in dict.fromkeys(wanted)]
        if {m["name"] for m in group["member"]} != before:
            state.changed("update_group", name)
        if (dropped := await after_apply(state, "update_group")) is not None:
            return dropped
        return _envelope(request, world, 200, mkey=name)

    return FaultMiddleware(app, state)
