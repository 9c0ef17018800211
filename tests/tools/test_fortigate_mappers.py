"""FortiGate wire mapping: addresses to blocks and back, the JSON envelope to the error tree, the
settings, and the Bearer token over `httpx.MockTransport`."""

from __future__ import annotations

import httpx
import pytest
from pydantic import SecretStr

from tools.errors import AuthError, NotFoundError, PermanentToolError, TransientToolError
from tools.firewall.fortigate import (
    AddressType,
    Blocked,
    FortiGateFirewall,
    FortiGateSettings,
    _check,
    _members,
    _subnet,
    _to_blocked,
    _to_payload,
)
from tools.vendor_settings import VendorConfigError, load_vendor_settings


def _answer(status: int, body: object | None = None, method: str = "POST") -> httpx.Response:
    request = httpx.Request(method, "https://fgt/api/v2/cmdb/firewall/address")
    if body is None:
        return httpx.Response(status, request=request)
    return httpx.Response(status, json=body, request=request)


def test_addresses_map_to_blocks_and_back() -> None:
    ip = {
        "name": "garrison-203.0.113.0_24",
        "type": "ipmask",
        "subnet": "203.0.113.0 255.255.255.0",
    }
    assert _to_blocked(ip) == Blocked(
        "garrison-203.0.113.0_24", AddressType.IPMASK, "203.0.113.0/24"
    )
    host = {
        "name": "garrison-203.0.113.7",
        "type": "ipmask",
        "subnet": "203.0.113.7 255.255.255.255",
    }
    item = _to_blocked(host)
    assert item is not None and item.value == "203.0.113.7"
    assert _to_payload(item)["subnet"] == "203.0.113.7 255.255.255.255"
    fqdn = {"name": "garrison-evil.example", "type": "fqdn", "fqdn": "Evil.Example", "comment": "c"}
    assert _to_blocked(fqdn) == Blocked(
        "garrison-evil.example", AddressType.FQDN, "evil.example", "c"
    )
    assert (
        _to_blocked({"name": "web", "type": "ipmask", "subnet": "10.0.0.1 255.255.255.255"}) is None
    )
    assert _to_blocked({"name": "garrison-r", "type": "iprange"}) is None
    assert _subnet("10.0.0.0/8") == "10.0.0.0 255.0.0.0"


def test_group_members() -> None:
    body = {"results": [{"name": "g", "member": [{"name": "none"}, {"name": "garrison-x"}]}]}
    assert _members(body) == ["none", "garrison-x"]
    assert _members({"results": []}) == []


@pytest.mark.parametrize(
    ("status", "body", "error"),
    [
        (500, {"status": "error", "http_status": 500, "error": -5}, PermanentToolError),
        (500, {"status": "error", "http_status": 500, "error": -651}, PermanentToolError),
        (404, {"status": "error", "http_status": 404, "error": -3}, NotFoundError),
        (503, None, TransientToolError),
        (429, None, TransientToolError),
        (401, None, AuthError),
        (403, {"status": "error", "http_status": 403}, AuthError),
        (200, {"status": "error"}, TransientToolError),
    ],
)
def test_answers_map_to_the_error_tree(status: int, body: object, error: type[Exception]) -> None:
    with pytest.raises(error):
        _check(_answer(status, body))


def test_already_answers_are_accepted_where_the_state_is_the_goal() -> None:
    duplicate = _answer(500, {"status": "error", "http_status": 500, "error": -5})
    assert _check(duplicate, already_ok=True)["error"] == -5
    assert _check(_answer(404, {"status": "error", "error": -3}, "DELETE"), already_ok=True)
    with pytest.raises(PermanentToolError):
        _check(_answer(500, {"status": "error", "error": -23}), already_ok=True)


def test_settings_need_the_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GARRISON_FORTIGATE_BASE_URL", "https://fgt.example")
    with pytest.raises(VendorConfigError, match="GARRISON_FORTIGATE_API_TOKEN is required"):
        load_vendor_settings(FortiGateSettings)
    monkeypatch.setenv("GARRISON_FORTIGATE_API_TOKEN", "t0ken")
    settings = load_vendor_settings(FortiGateSettings)
    assert settings.vdom == "root" and "t0ken" not in repr(settings)


async def test_token_and_vdom_are_sent_on_every_call() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if "addrgrp" in request.url.path:
            return httpx.Response(200, json={"status": "success", "results": [{"member": []}]})
        return httpx.Response(200, json={"status": "success", "results": []})

    settings = FortiGateSettings(
        base_url="https://fgt.example", api_token=SecretStr("t0ken"), vdom="dmz"
    )
    tool = FortiGateFirewall(settings, httpx.MockTransport(answer))
    assert await tool.list_blocked() == []
    await tool.aclose()
    assert {r.headers["authorization"] for r in seen} == {"Bearer t0ken"}
    assert {r.url.params["vdom"] for r in seen} == {"dmz"}
    assert seen[1].url.params["filter"] == "name=@garrison-"
