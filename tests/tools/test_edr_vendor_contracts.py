"""Every EDR contract, run against each vendor adapter over real loopback HTTP to its emulator,
plus what only a vendor shows: token refresh, 429 with Retry-After, auth refusals, a connection
dropped after the change was applied, and the vendor's own "already in that state" answer."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from pydantic import SecretStr

from tests.tools.contracts import edr
from tests.tools.contracts.world import (
    RUNDLL_PID,
    RUNDLL_SHA256,
    Harness,
    Scenario,
    environment,
    events,
)
from tools.edr.crowdstrike import CrowdStrikeEdr
from tools.edr.defender import DefenderEdr
from tools.edr.emulators.crowdstrike import build_app
from tools.edr.emulators.crowdstrike_world import FalconWorld
from tools.edr.emulators.defender import DefenderWorld
from tools.edr.emulators.defender import build_app as build_defender_app
from tools.edr.vendors import VENDORS, crowdstrike_emulator_settings, defender_emulator_settings
from tools.emulators.base import EmulatorFaults, EmulatorState, FaultMiddleware
from tools.emulators.serve import serve
from tools.errors import AuthError, NotFoundError, PermanentToolError, TransientToolError
from tools.vendor_spec import VendorSpec

Contract = Callable[[Any], Awaitable[None]]

# What a vendor's API cannot do: its adapter refuses it as a permanent error (Defender cannot
# release a quarantined file), shown by `test_defender_quarantines_once_and_cannot_restore`.
UNSUPPORTED = {("defender", "quarantines_and_restores_files_idempotently")}


def _factory(spec: VendorSpec) -> Any:
    @asynccontextmanager
    async def make(scenario: Scenario) -> AsyncIterator[Harness[Any]]:
        fail = sum(scenario.faults.fail_first.values()) if scenario.faults else 0
        state = EmulatorState(faults=EmulatorFaults(fail_5xx=fail))
        app = spec.emulator(scenario.environment, scenario.events, state)
        async with serve(app) as base_url:
            tool = spec.build(spec.emulator_settings(base_url), None)
            try:
                yield Harness(tool=tool, state_changes=lambda: state.state_changes)
            finally:
                await tool.aclose()

    return make


@pytest.mark.parametrize(
    ("contract", "spec"),
    [
        pytest.param(contract, spec, id=f"{spec.name}.{contract.__name__}")
        for spec in VENDORS
        for contract in edr.CONTRACTS
        if (spec.name, contract.__name__) not in UNSUPPORTED
    ],
)
async def test_vendor_meets_edr_contract(contract: Contract, spec: VendorSpec) -> None:
    await contract(_factory(spec))


# --- CrowdStrike Falcon ---------------------------------------------------------------------


@asynccontextmanager
async def _falcon(
    faults: EmulatorFaults | None = None,
) -> AsyncIterator[tuple[CrowdStrikeEdr, FalconWorld, EmulatorState]]:
    world = FalconWorld.seed(environment(), events())
    state = EmulatorState(faults=faults or EmulatorFaults())
    async with serve(FaultMiddleware(build_app(world, state), state)) as base_url:
        tool = CrowdStrikeEdr(crowdstrike_emulator_settings(base_url))
        try:
            yield tool, world, state
        finally:
            await tool.aclose()


async def test_falcon_expired_token_is_refreshed_once() -> None:
    async with _falcon() as (tool, world, _):
        assert await tool.is_contained("PRD01") is False
        assert world.tokens_issued == 1
        world.expire_tokens()
        assert await tool.is_contained("PRD01") is False
        assert await tool.is_contained("PRD01") is False
        assert world.tokens_issued == 2


async def test_falcon_429_surfaces_retry_after() -> None:
    async with _falcon(EmulatorFaults(rate_limit_429=1, retry_after_s=7)) as (tool, _, state):
        with pytest.raises(TransientToolError) as caught:
            await tool.isolate_host("PRD01")
        assert caught.value.retry_after_s == 7.0
        assert (await tool.isolate_host("PRD01")).applied is True
        assert state.state_changes == 1


async def test_falcon_wrong_credentials_are_an_auth_error() -> None:
    world = FalconWorld.seed(environment(), events())
    state = EmulatorState()
    async with serve(FaultMiddleware(build_app(world, state), state)) as base_url:
        settings = crowdstrike_emulator_settings(base_url).model_copy(
            update={"client_secret": SecretStr("wrong")}
        )
        tool = CrowdStrikeEdr(settings)
        try:
            with pytest.raises(AuthError, match="invalid client credentials"):
                await tool.find_host("PRD01")
        finally:
            await tool.aclose()


@pytest.mark.parametrize("op", ["contain", "kill", "unrelease", "reg_delete", "patch"])
async def test_falcon_dropped_connection_after_apply_is_transient_then_applied_once(
    op: str,
) -> None:
    artefact = "HKLM\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Run\\Updater"
    act: dict[str, Callable[[CrowdStrikeEdr], Awaitable[Any]]] = {
        "contain": lambda t: t.isolate_host("PRD01"),
        "kill": lambda t: t.kill_process("PRD01", RUNDLL_PID),
        "unrelease": lambda t: t.quarantine_file("PRD01", RUNDLL_SHA256),
        "reg_delete": lambda t: t.remove_persistence("PRD01", artefact),
        "patch": lambda t: t.apply_patch("PRD01", "CVE-2021-34527", "KB5004945"),
    }
    async with _falcon(EmulatorFaults(reset_after_apply={op})) as (tool, _, state):
        with pytest.raises(TransientToolError):
            await act[op](tool)
        assert state.state_changes == 1
        retry = await act[op](tool)
        assert retry.applied is False and "already" in retry.detail
        assert state.state_changes == 1


async def test_falcon_patch_script_failure_is_permanent_and_changes_nothing() -> None:
    async with _falcon() as (tool, world, state):
        world.patch_script = "another-script"  # the tenant's library lacks Garrison's script
        with pytest.raises(PermanentToolError, match="unknown cloud file"):
            await tool.apply_patch("PRD01", "CVE-2021-34527", "KB5004945")
        assert await tool.is_vulnerable("PRD01", "CVE-2021-34527") is True
        assert state.state_changes == 0


async def test_falcon_already_contained_error_after_a_stale_read_is_success() -> None:
    faults = EmulatorFaults(already_in_state_error=True, search_lag_s=30)
    async with _falcon(faults) as (tool, _, state):
        assert (await tool.isolate_host("PRD01")).applied is True
        # The Hosts API still shows `normal`: the adapter asks again, Falcon answers 409.
        again = await tool.isolate_host("PRD01")
        assert again.applied is False and "already" in again.detail
        assert state.state_changes == 1
        assert [e.status for e in state.ledger if e.method == "POST"][-1] == 409


async def test_falcon_containment_goes_ahead_of_a_storm_of_reads() -> None:
    async with _falcon() as (tool, _, state):
        reads = [asyncio.create_task(tool.process_events("PRD01")) for _ in range(5)]
        await tool.isolate_host("PRD01")
        await asyncio.gather(*reads)
        assert state.state_changes == 1


# --- Microsoft Defender for Endpoint ----------------------------------------------------------


@asynccontextmanager
async def _defender(
    faults: EmulatorFaults | None = None,
) -> AsyncIterator[tuple[DefenderEdr, DefenderWorld, EmulatorState]]:
    world = DefenderWorld.seed(environment(), events())
    state = EmulatorState(faults=faults or EmulatorFaults())
    async with serve(FaultMiddleware(build_defender_app(world, state), state)) as base_url:
        tool = DefenderEdr(defender_emulator_settings(base_url))
        try:
            yield tool, world, state
        finally:
            await tool.aclose()


async def test_defender_expired_token_is_refreshed_once() -> None:
    async with _defender() as (tool, world, _):
        assert await tool.is_contained("PRD01") is False
        world.expire_tokens()
        assert await tool.is_contained("PRD01") is False
        assert await tool.is_contained("PRD01") is False
        assert world.tokens_issued == 2


async def test_defender_429_surfaces_retry_after_then_isolates() -> None:
    async with _defender(EmulatorFaults(rate_limit_429=1, retry_after_s=5)) as (tool, _, state):
        with pytest.raises(TransientToolError) as caught:
            await tool.isolate_host("PRD01")
        assert caught.value.retry_after_s == 5.0
        assert (await tool.isolate_host("PRD01")).applied is True
        assert state.state_changes == 1


async def test_defender_refused_client_is_an_auth_error() -> None:
    world = DefenderWorld.seed(environment(), events())
    state = EmulatorState()
    async with serve(FaultMiddleware(build_defender_app(world, state), state)) as base_url:
        settings = defender_emulator_settings(base_url).model_copy(
            update={"client_secret": SecretStr("wrong")}
        )
        tool = DefenderEdr(settings)
        try:
            with pytest.raises(AuthError, match="invalid_client"):
                await tool.find_host("PRD01")
        finally:
            await tool.aclose()


@pytest.mark.parametrize("op", ["isolate", "StopAndQuarantineFile", "runliveresponse"])
async def test_defender_dropped_connection_after_apply_is_transient_then_applied_once(
    op: str,
) -> None:
    act: dict[str, Callable[[DefenderEdr], Awaitable[Any]]] = {
        "isolate": lambda t: t.isolate_host("PRD01"),
        "StopAndQuarantineFile": lambda t: t.quarantine_file("PRD01", RUNDLL_SHA256),
        "runliveresponse": lambda t: t.kill_process("PRD01", RUNDLL_PID),
    }
    async with _defender(EmulatorFaults(reset_after_apply={op})) as (tool, _, state):
        with pytest.raises(TransientToolError):
            await act[op](tool)
        retry = await act[op](tool)
        assert retry.applied is False and "already" in retry.detail
        assert state.state_changes == 1


async def test_defender_active_request_exists_on_a_stale_list_is_retried_not_doubled() -> None:
    faults = EmulatorFaults(already_in_state_error=True, search_lag_s=30)
    async with _defender(faults) as (tool, _, state):
        assert (await tool.isolate_host("PRD01")).applied is True
        # The actions list lags: the adapter posts again, Defender answers 400
        # ActiveRequestAlreadyExists, the re-read is still stale: transient, not a second action.
        with pytest.raises(TransientToolError, match="pending"):
            await tool.isolate_host("PRD01")
        state.faults.search_lag_s = 0
        again = await tool.isolate_host("PRD01")
        assert again.applied is False and "already" in again.detail
        assert state.state_changes == 1


async def test_defender_quarantines_once_and_cannot_restore() -> None:
    async with _defender() as (tool, _, state):
        assert await tool.is_file_quarantined("PRD01", RUNDLL_SHA256.upper()) is False
        assert (await tool.quarantine_file("PRD01", RUNDLL_SHA256)).applied is True
        assert (await tool.quarantine_file("PRD01", RUNDLL_SHA256)).applied is False
        assert await tool.is_file_quarantined("PRD01", RUNDLL_SHA256) is True
        assert state.state_changes == 1
        with pytest.raises(PermanentToolError, match="no API"):
            await tool.restore_file("PRD01", RUNDLL_SHA256)
        with pytest.raises(PermanentToolError, match="refusing"):
            await tool.remove_persistence("PRD01", "HKLM\\Run\\x'; Remove-Item C:\\ -Recurse")
        with pytest.raises(NotFoundError):
            await tool.quarantine_file("PRD01", "0" * 64)
        assert state.state_changes == 1
