"""The firewall contract run against every firewall vendor adapter over real loopback HTTP to its
emulator, plus what each vendor's wire adds: 429 with Retry-After, refused credentials, a change
applied and then the connection dropped, key refresh, and the vendor's "already" answers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from pydantic import SecretStr
from starlette.types import ASGIApp, Receive, Scope, Send

from tests.tools.contracts import firewall
from tests.tools.contracts.world import C2_IP, Harness, Scenario, environment, events
from tools.emulators.base import EmulatorFaults, EmulatorState
from tools.emulators.serve import serve
from tools.errors import AuthError, PermanentToolError, TransientToolError
from tools.firewall.emulators import fortigate as fortigate_emulator
from tools.firewall.emulators import panos as panos_emulator
from tools.firewall.panos import PanOsFirewall
from tools.firewall.vendors import VENDORS
from tools.vendor_spec import VendorSpec

Contract = Callable[[Any], Awaitable[None]]


def _faults(scenario: Scenario) -> EmulatorFaults:
    fail = sum(scenario.faults.fail_first.values()) if scenario.faults else 0
    return EmulatorFaults(fail_5xx=fail)


def _factory(spec: VendorSpec) -> Any:
    @asynccontextmanager
    async def make(scenario: Scenario) -> AsyncIterator[Harness[Any]]:
        async with _served(spec, EmulatorState(), scenario) as (tool, state):
            state.faults = _faults(scenario)
            yield Harness(tool=tool, state_changes=lambda: state.state_changes)

    return make


@asynccontextmanager
async def _served(
    spec: VendorSpec,
    state: EmulatorState,
    scenario: Scenario | None = None,
    *,
    settings: Any = None,
    wrap: Callable[[ASGIApp], ASGIApp] = lambda app: app,
    **emulator: Any,
) -> AsyncIterator[tuple[Any, EmulatorState]]:
    scenario = scenario or Scenario()
    app = spec.emulator(scenario.environment, scenario.events, state, **emulator)
    async with serve(wrap(app)) as base_url:
        config = spec.emulator_settings(base_url)
        if settings is not None:
            config = config.model_copy(update=settings)
        tool = spec.build(config, None)
        try:
            yield tool, state
        finally:
            await tool.aclose()


@pytest.mark.parametrize(
    ("contract", "spec"),
    [
        pytest.param(contract, spec, id=f"{spec.name}.{contract.__name__}")
        for spec in VENDORS
        for contract in firewall.CONTRACTS
    ],
)
async def test_vendor_meets_firewall_contract(contract: Contract, spec: VendorSpec) -> None:
    await contract(_factory(spec))


VENDOR_IDS = [pytest.param(spec, id=spec.name) for spec in VENDORS]


@pytest.mark.parametrize("spec", VENDOR_IDS)
async def test_rate_limit_surfaces_retry_after(spec: VendorSpec) -> None:
    state = EmulatorState()
    async with _served(spec, state) as (tool, _):
        await tool.list_blocked()  # authenticated first, so the 429 meets a real call
        state.faults.rate_limit_429 = 1
        state.faults.retry_after_s = 7
        with pytest.raises(TransientToolError) as raised:
            await tool.block_ip(C2_IP)
        assert raised.value.retry_after_s == 7.0
        assert (await tool.block_ip(C2_IP)).applied is True
        assert state.state_changes == 1


@pytest.mark.parametrize("spec", VENDOR_IDS)
async def test_refused_credentials_are_auth_errors(spec: VendorSpec) -> None:
    wrong = {
        "panos": {"password": SecretStr("wrong")},
        "fortigate": {"api_token": SecretStr("wrong")},
    }[spec.name]
    state = EmulatorState()
    async with _served(spec, state, settings=wrong) as (tool, _):
        with pytest.raises(AuthError):
            await tool.block_ip(C2_IP)
        assert state.state_changes == 0


DROPS = {"panos": ("set", "commit"), "fortigate": ("create_address", "update_group")}


@pytest.mark.parametrize(
    ("spec", "op"),
    [pytest.param(spec, op, id=f"{spec.name}.{op}") for spec in VENDORS for op in DROPS[spec.name]],
)
async def test_dropped_connection_after_apply_is_transient_and_the_retry_applies_once(
    spec: VendorSpec, op: str
) -> None:
    state = EmulatorState(faults=EmulatorFaults(reset_after_apply={op}))
    async with _served(spec, state) as (tool, _):
        with pytest.raises(TransientToolError):
            await tool.block_ip(C2_IP)
        state.faults.reset_after_apply = set()
        await tool.block_ip(C2_IP)  # applied or already: the retry completes what was started
        assert await tool.is_ip_blocked(C2_IP) is True
        assert (await tool.block_ip(C2_IP)).applied is False
        assert await tool.list_blocked() == [C2_IP]
        assert state.state_changes == 1


# --- PAN-OS -------------------------------------------------------------------------------------

PANOS = next(spec for spec in VENDORS if spec.name == "panos")


async def test_panos_expired_key_is_regenerated_once() -> None:
    world = panos_emulator.PanOsWorld()
    async with _served(PANOS, EmulatorState(), world=world) as (tool, _):
        assert isinstance(tool, PanOsFirewall)
        assert await tool.list_blocked() == []
        assert world.keys_issued == 1
        world.expire_keys()
        assert (await tool.block_ip(C2_IP)).applied is True
        assert world.keys_issued == 2 and tool.auth.generated == 2
        assert await tool.is_ip_blocked(C2_IP) is True
        assert world.keys_issued == 2


async def test_panos_static_key_refused_is_an_auth_error_without_keygen() -> None:
    world = panos_emulator.PanOsWorld()
    settings = {"api_key": SecretStr("LUFRPTnot-a-key"), "username": None, "password": None}
    async with _served(PANOS, EmulatorState(), settings=settings, world=world) as (tool, _):
        with pytest.raises(AuthError):
            await tool.list_blocked()
        assert world.keys_issued == 0


def _remove_member_first(world: panos_emulator.PanOsWorld) -> Callable[[ASGIApp], ASGIApp]:
    """Another administrator removes Garrison's member just before the adapter's delete."""

    def wrap(app: ASGIApp) -> ASGIApp:
        async def racing(scope: Scope, receive: Receive, send: Send) -> None:
            message = await receive()
            body = message.get("body", b"")
            if b"action=delete" in body and b"static%2Fmember" in body:
                group = panos_emulator._resolve(
                    world.candidate,
                    f"{world.vsys_xpath()}/address-group/entry[@name='{world.address_group}']",
                )
                assert group is not None
                static = group.find("static")
                assert static is not None
                for member in static.findall("member"):
                    if member.text != panos_emulator.PLACEHOLDER:
                        static.remove(member)

            async def replay() -> Any:
                return {"type": "http.request", "body": body, "more_body": False}

            await app(scope, replay, send)

        return racing

    return wrap


async def test_panos_already_absent_answer_is_success() -> None:
    world = panos_emulator.PanOsWorld()
    state = EmulatorState()
    async with _served(PANOS, state, wrap=_remove_member_first(world), world=world) as (tool, _):
        await tool.block_ip(C2_IP)
        state.faults.already_in_state_error = True
        change = await tool.unblock_ip(C2_IP)
        assert change.applied is True
        assert await tool.is_ip_blocked(C2_IP) is False
        assert any(entry.status == 200 and b"delete" in entry.body for entry in state.ledger)


async def test_panos_block_records_tag_and_expiry_on_the_object() -> None:
    world = panos_emulator.PanOsWorld()
    async with _served(PANOS, EmulatorState(), settings={"block_ttl_h": 24.0}, world=world) as (
        tool,
        _,
    ):
        await tool.block_domain("evil.example", comment="inc-7")
        entry = panos_emulator._resolve(
            world.running, f"{world.vsys_xpath()}/address/entry[@name='garrison-evil.example']"
        )
        assert entry is not None
        assert entry.findtext("fqdn") == "evil.example"
        assert entry.findtext("tag/member") == "garrison"
        description = entry.findtext("description") or ""
        assert "expires 20" in description and description.endswith("inc-7")


async def test_panos_objects_outside_garrison_are_not_listed() -> None:
    async with _served(PANOS, EmulatorState(), Scenario(environment(), events())) as (tool, _):
        # The seeded assets and the group's untagged placeholder are not Garrison's blocks.
        assert await tool.list_blocked() == []
        assert await tool.is_ip_blocked("172.18.39.6") is False


# --- FortiGate ----------------------------------------------------------------------------------

FORTIGATE = next(spec for spec in VENDORS if spec.name == "fortigate")


async def test_fortigate_duplicate_answer_is_success() -> None:
    """An address left by an attempt that lost its answer makes FortiOS answer -5 to the retry."""
    world = fortigate_emulator.FortiGateWorld()
    state = EmulatorState(faults=EmulatorFaults(reset_after_apply={"create_address"}))
    async with _served(FORTIGATE, state, world=world) as (tool, _):
        with pytest.raises(TransientToolError):
            await tool.block_domain("evil.example")
        state.faults.reset_after_apply = set()
        assert (await tool.block_domain("evil.example")).applied is True
        assert any(e.method == "POST" and e.status == 500 for e in state.ledger)
        assert await tool.list_blocked() == ["evil.example"]
        assert state.state_changes == 1


async def test_fortigate_block_records_expiry_in_the_comment() -> None:
    world = fortigate_emulator.FortiGateWorld()
    async with _served(FORTIGATE, EmulatorState(), settings={"block_ttl_h": 4.0}, world=world) as (
        tool,
        _,
    ):
        await tool.block_ip("203.0.113.0/24", comment="inc-7")
        address = world.addresses["garrison-203.0.113.0_24"]
        assert address["type"] == "ipmask" and address["subnet"] == "203.0.113.0 255.255.255.0"
        assert "expires 20" in address["comment"] and address["comment"].endswith("inc-7")
        assert (await tool.unblock_ip("203.0.113.0/24")).applied is True
        assert "garrison-203.0.113.0_24" not in world.addresses
        assert [m["name"] for m in world.groups["garrison-blocked"]["member"]] == ["none"]


async def test_fortigate_refuses_ipv6_blocks_permanently() -> None:
    state = EmulatorState()
    async with _served(FORTIGATE, state) as (tool, _):
        with pytest.raises(PermanentToolError, match="IPv6"):
            await tool.block_ip("2001:db8::1")
        assert state.state_changes == 0


async def test_fortigate_missing_group_names_the_setting() -> None:
    async with _served(FORTIGATE, EmulatorState(), settings={"address_group": "nope"}) as (
        tool,
        _,
    ):
        with pytest.raises(PermanentToolError, match="GARRISON_FORTIGATE_ADDRESS_GROUP"):
            await tool.list_blocked()


async def test_panos_missing_group_names_the_setting() -> None:
    async with _served(PANOS, EmulatorState(), settings={"address_group": "nope"}) as (tool, _):
        with pytest.raises(PermanentToolError, match="GARRISON_PANOS_ADDRESS_GROUP"):
            await tool.list_blocked()
