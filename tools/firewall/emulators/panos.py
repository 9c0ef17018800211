"""An emulator of the PAN-OS XML API (`/api/`): key generation, a candidate and a running
configuration held as XML, `type=config` get/show/set/delete by xpath, `type=commit` jobs polled
with `show jobs`, and PAN-OS's answers (`<response status= code=>`, HTTP 403 for a bad key).

It understands the xpaths a client of objects and groups uses: element paths with `[@name='..']`
and `[text()='..']` predicates. `set` merges like PAN-OS (entries by name, members by text), and
an address still referenced by a group cannot be deleted. It is seeded with the environment's
assets as address objects, the `garrison` tag, the block group (holding an untagged placeholder,
as PAN-OS keeps static groups non-empty) and a deny rule referencing it.
"""

from __future__ import annotations

import copy
import re
import secrets
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from fastapi import FastAPI, Request
from starlette.responses import Response
from starlette.types import ASGIApp

from tools.emulators.base import EmulatorState, FaultMiddleware, after_apply
from tools.models import Environment

USERNAME = "garrison-api"
PASSWORD = "emulated-password"  # noqa: S105  (the emulator's own test credential)
PLACEHOLDER = "placeholder-192.0.2.255"
_SEGMENT = re.compile(r"([^/\[]+)(?:\[(@name|text\(\))='([^']*)'\])?")


@dataclass
class PanOsWorld:
    """What the emulated firewall holds beside its configuration: accepted keys and jobs.
    Tests keep a handle on it to expire keys or change the configuration behind the adapter."""

    device: str = "localhost.localdomain"
    vsys: str = "vsys1"
    address_group: str = "garrison-blocked"
    keys: set[str] = field(default_factory=set)
    keys_issued: int = 0
    jobs: dict[int, int] = field(default_factory=dict)  # job id -> polls before FIN
    candidate: ET.Element = field(default_factory=lambda: ET.Element("config"))
    running: ET.Element = field(default_factory=lambda: ET.Element("config"))

    def expire_keys(self) -> None:
        self.keys.clear()

    def vsys_xpath(self) -> str:
        return f"/config/devices/entry[@name='{self.device}']/vsys/entry[@name='{self.vsys}']"

    def members(self, config: ET.Element) -> set[str]:
        group = _resolve(
            config, f"{self.vsys_xpath()}/address-group/entry[@name='{self.address_group}']"
        )
        if group is None:
            return set()
        return {m.text or "" for m in group.findall("./static/member")}


def _seed(world: PanOsWorld, environment: Environment) -> None:
    vsys = _resolve(world.candidate, world.vsys_xpath(), create=True)
    assert vsys is not None
    addresses = "".join(
        f"<entry name='{a.id}'><ip-netmask>{a.ips[0]}</ip-netmask></entry>"
        for a in environment.assets
        if a.ips
    )
    seed = (
        "<tag><entry name='garrison'><comments>blocked by Garrison</comments></entry></tag>"
        f"<address>{addresses}<entry name='{PLACEHOLDER}'><ip-netmask>192.0.2.255/32</ip-netmask>"
        "<description>keeps the group non-empty</description></entry></address>"
        f"<address-group><entry name='{world.address_group}'><static>"
        f"<member>{PLACEHOLDER}</member></static></entry></address-group>"
        "<rulebase><security><rules><entry name='garrison-deny'><from><member>any</member></from>"
        "<to><member>any</member></to><source><member>any</member></source><destination>"
        f"<member>{world.address_group}</member></destination><action>deny</action>"
        "</entry></rules></security></rulebase>"
    )
    for child in ET.fromstring(f"<root>{seed}</root>"):  # noqa: S314  (our own literal)
        _merge(vsys, child)
    world.running = copy.deepcopy(world.candidate)


# --- the configuration tree ---------------------------------------------------------------------


def _matches(node: ET.Element, tag: str, kind: str | None, value: str) -> bool:
    if node.tag != tag:
        return False
    if kind == "@name":
        return node.get("name") == value
    if kind == "text()":
        return (node.text or "") == value
    return True


def _resolve(root: ET.Element, xpath: str, *, create: bool = False) -> ET.Element | None:
    segments = _SEGMENT.findall(xpath.strip("/"))
    if not segments or segments[0][0] != root.tag:
        return None
    node = root
    for tag, kind, value in segments[1:]:
        found = next((c for c in node if _matches(c, tag, kind or None, value)), None)
        if found is None:
            if not create:
                return None
            found = ET.SubElement(node, tag, {"name": value} if kind == "@name" else {})
            if kind == "text()":
                found.text = value
        node = found
    return node


def _merge(parent: ET.Element, child: ET.Element) -> None:
    """PAN-OS `set`: entries merge by name, members by text, containers recursively, leaves
    are replaced."""
    if child.tag == "member":
        if not any(m.tag == "member" and m.text == child.text for m in parent):
            parent.append(copy.deepcopy(child))
        return
    if child.tag == "entry":
        existing = next(
            (e for e in parent if e.tag == "entry" and e.get("name") == child.get("name")), None
        )
    else:
        existing = parent.find(child.tag)
    if existing is None:
        parent.append(copy.deepcopy(child))
    elif len(child) or child.tag == "entry":
        for grandchild in child:
            _merge(existing, grandchild)
    else:
        parent.remove(existing)
        parent.append(copy.deepcopy(child))


def _parent_of(root: ET.Element, target: ET.Element) -> ET.Element | None:
    return next((p for p in root.iter() if target in list(p)), None)


# --- answers ------------------------------------------------------------------------------------


def _xml(body: str, status: int = 200) -> Response:
    return Response(body, status_code=status, media_type="application/xml")


def _error(code: str, message: str, status: int = 200) -> Response:
    msg = ET.Element("msg")
    msg.text = message
    line = ET.tostring(msg, encoding="unicode")
    return _xml(
        f'<response status="error" code="{code}"><result>{line}</result></response>', status
    )


def _success(inner: str = "", code: str = "20") -> Response:
    return _xml(f'<response status="success" code="{code}">{inner}</response>')


def build_emulator(
    environment: Environment,
    events: Iterable[Mapping[str, Any]],
    state: EmulatorState,
    world: PanOsWorld | None = None,
) -> ASGIApp:
    world = world or PanOsWorld()
    _seed(world, environment)
    app = FastAPI(title="PAN-OS XML API (emulated)")

    @app.api_route("/api/", methods=["GET", "POST"])
    async def api(request: Request) -> Response:
        form = dict(request.query_params)
        body = (await request.body()).decode()
        form.update({k: v[-1] for k, v in parse_qs(body, keep_blank_values=True).items()})
        kind = form.get("type", "")
        if kind == "keygen":
            return _keygen(form)
        key = request.headers.get("x-pan-key") or form.get("key", "")
        if key not in world.keys:
            return _error("403", "Invalid Credential", status=403)
        match kind:
            case "config":
                return await _config(form)
            case "commit":
                return await _commit()
            case "op":
                return _op(form.get("cmd", ""))
        return _error("17", f"invalid type {kind!r}", status=400)

    def _keygen(form: dict[str, str]) -> Response:
        if form.get("user") != USERNAME or form.get("password") != PASSWORD:
            return _error("403", "Invalid Credentials.", status=403)
        key = "LUFRPT" + secrets.token_urlsafe(24)
        world.keys.add(key)
        world.keys_issued += 1
        return _success(f"<result><key>{key}</key></result>", code="19")

    async def _config(form: dict[str, str]) -> Response:
        action, xpath = form.get("action", ""), form.get("xpath", "")
        if action in ("get", "show"):
            node = _resolve(world.candidate if action == "get" else world.running, xpath)
            if node is None:
                if action == "get":
                    return _success("<result/>", code="7")
                return _error("7", "No such node")
            inner = ET.tostring(node, encoding="unicode")
            return _success(f'<result total-count="1" count="1">{inner}</result>', code="19")
        before = world.members(world.candidate)
        if action == "set":
            node = _resolve(world.candidate, xpath, create=True)
            if node is None:
                return _error("6", "Bad Xpath")
            try:
                element = ET.fromstring(f"<root>{form.get('element', '')}</root>")  # noqa: S314
            except ET.ParseError:
                return _error("18", "Malformed command")
            for child in element:
                _merge(node, child)
        elif action == "delete":
            refused = _delete(xpath)
            if refused is not None:
                return refused
        else:
            return _error("17", f"invalid action {action!r}", status=400)
        if world.members(world.candidate) != before:
            state.changed(action, xpath)
        dropped = await after_apply(state, action)
        if dropped is not None:
            return dropped
        return _success("<msg>command succeeded</msg>")

    def _delete(xpath: str) -> Response | None:
        node = _resolve(world.candidate, xpath)
        if node is None:
            if state.faults.already_in_state_error:
                return _error("7", "Object doesn't exist")
            return None
        name = node.get("name")
        if node.tag == "entry" and name is not None:
            referenced = [
                group.get("name", "")
                for group in world.candidate.iter("entry")
                if name in {m.text for m in group.findall("./static/member")}
            ]
            if referenced:
                return _error("10", f"{name} cannot be deleted: referenced by {referenced[0]}")
        parent = _parent_of(world.candidate, node)
        if parent is not None:
            parent.remove(node)
        return None

    async def _commit() -> Response:
        if ET.tostring(world.candidate) == ET.tostring(world.running):
            return _success("<msg>There are no changes to commit.</msg>", code="19")
        world.running = copy.deepcopy(world.candidate)
        job = len(world.jobs) + 1
        world.jobs[job] = 1  # the first poll sees it running, the next one finished
        dropped = await after_apply(state, "commit")
        if dropped is not None:
            return dropped
        line = f"<msg><line>Commit job enqueued with jobid {job}</line></msg><job>{job}</job>"
        return _success(f"<result>{line}</result>", code="19")

    def _op(cmd: str) -> Response:
        match = re.fullmatch(r"<show><jobs><id>(\d+)</id></jobs></show>", cmd.strip())
        if match is None:
            return _error("17", "Invalid command")
        job = int(match.group(1))
        if job not in world.jobs:
            return _error("7", f"job {job} not found")
        running = world.jobs[job] > 0
        world.jobs[job] = max(0, world.jobs[job] - 1)
        status, result, progress = ("ACT", "PEND", "50") if running else ("FIN", "OK", "100")
        return _success(
            f"<result><job><id>{job}</id><type>Commit</type><status>{status}</status>"
            f"<result>{result}</result><progress>{progress}</progress>"
            "<details><line>Configuration committed successfully</line></details></job></result>",
            code="19",
        )

    return FaultMiddleware(app, state)
