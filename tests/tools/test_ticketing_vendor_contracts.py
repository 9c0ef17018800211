"""The ticketing contract run against every ticketing vendor adapter over real loopback HTTP to
its emulator, plus what each vendor must show beyond it: errors mapped once, 429 honoured, a
change applied and its answer lost, and Jira's lagging search never yielding a second ticket."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from tests.tools.contracts import ticketing
from tests.tools.contracts.world import Harness, Scenario, environment, events
from tools.emulators.base import EmulatorFaults, EmulatorState
from tools.emulators.serve import serve
from tools.errors import AuthError, TransientToolError
from tools.results import TicketState
from tools.ticketing.base import with_marker
from tools.ticketing.vendors import VENDORS
from tools.vendor_spec import VendorSpec

Contract = Callable[[Any], Awaitable[None]]
SPECS = {spec.name: spec for spec in VENDORS}


def _factory(spec: VendorSpec, **knobs: Any) -> Any:
    @asynccontextmanager
    async def make(scenario: Scenario) -> AsyncIterator[Harness[Any]]:
        state = EmulatorState(faults=EmulatorFaults(**knobs))
        if scenario.faults is not None:
            state.faults.fail_5xx = sum(scenario.faults.fail_first.values())
        async with serve(spec.emulator(scenario.environment, scenario.events, state)) as url:
            adapter = spec.build(spec.emulator_settings(url), None)
            try:
                yield Harness(tool=adapter, state_changes=lambda: state.state_changes)
            finally:
                await adapter.aclose()

    return make


@pytest.mark.parametrize(
    ("contract", "spec"),
    [
        pytest.param(contract, spec, id=f"{spec.name}.{contract.__name__}")
        for spec in VENDORS
        for contract in ticketing.CONTRACTS
    ],
)
async def test_vendor_meets_ticketing_contract(contract: Contract, spec: VendorSpec) -> None:
    await contract(_factory(spec))


@pytest.mark.parametrize("contract", ticketing.CONTRACTS, ids=lambda c: c.__name__)
async def test_jira_meets_the_contract_while_its_search_lags(contract: Contract) -> None:
    """Jira's search hides new issues for a while: what this process opened it still finds."""
    await contract(_factory(SPECS["jira"], search_lag_s=30.0))


@asynccontextmanager
async def _emulated(
    name: str,
    faults: EmulatorFaults | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    **overrides: Any,
) -> AsyncIterator[tuple[Any, EmulatorState, str]]:
    spec = SPECS[name]
    state = EmulatorState(faults=faults or EmulatorFaults())
    async with serve(spec.emulator(environment(), events(), state)) as url:
        settings = spec.emulator_settings(url).model_copy(update=overrides)
        adapter = spec.build(settings, transport)
        try:
            yield adapter, state, url
        finally:
            await adapter.aclose()


def _requests(state: EmulatorState, method: str, path_end: str) -> list[int]:
    return [e.status for e in state.ledger if e.method == method and e.path.endswith(path_end)]


@pytest.mark.parametrize("name", list(SPECS))
async def test_429_surfaces_retry_after(name: str) -> None:
    faults = EmulatorFaults(rate_limit_429=1, retry_after_s=3)
    async with _emulated(name, faults) as (adapter, state, _):
        with pytest.raises(TransientToolError) as raised:
            await adapter.find_ticket("inc-1")
        assert raised.value.retry_after_s == 3.0
        assert await adapter.find_ticket("inc-1") is None
        assert state.state_changes == 0


@pytest.mark.parametrize("name", list(SPECS))
async def test_a_timeout_is_transient(name: str) -> None:
    async with _emulated(name, EmulatorFaults(latency_ms=400), timeout_s=0.1) as (adapter, _, _):
        with pytest.raises(TransientToolError, match="timed out"):
            await adapter.find_ticket("inc-1")


@pytest.mark.parametrize(
    ("name", "op"), [("jira", "add_comment"), ("servicenow", "update_incident")]
)
async def test_comment_applied_then_answer_lost_is_posted_once_by_the_retry(
    name: str, op: str
) -> None:
    """The vendor applies the comment and drops the connection, and keeps doing so: the retry
    finds the comment's marker and posts nothing, however often the fault would repeat."""
    async with _emulated(name, EmulatorFaults(reset_after_apply={op})) as (adapter, state, _):
        ticket = await adapter.open_ticket("inc-1", "title", "")
        with pytest.raises(TransientToolError):
            await adapter.comment(ticket.id, "Triage: malicious", key="inc-1:1")
        for _ in range(3):
            await adapter.comment(ticket.id, "Triage: malicious", key="inc-1:1", recheck=True)
        found = await adapter.find_ticket("inc-1")
        assert found is not None
        assert found.comments == [with_marker("Triage: malicious", "inc-1:1")]
        assert state.state_changes == 2  # the open and one comment
        writes = [e for e in state.ledger if e.method in ("POST", "PATCH")]
        assert len(writes) == 2


# --- Jira ---------------------------------------------------------------------------------------


async def test_jira_wrong_token_is_an_auth_error() -> None:
    async with _emulated("jira", api_token=SecretStr("wrong")) as (adapter, _, _):
        with pytest.raises(AuthError, match="401"):
            await adapter.find_ticket("inc-1")


async def test_jira_user_without_permission_is_an_auth_error() -> None:
    async with _emulated("jira", email="viewer@example.com") as (adapter, state, _):
        assert await adapter.find_ticket("inc-1") is None  # may browse
        with pytest.raises(AuthError, match="403"):
            await adapter.open_ticket("inc-1", "title", "")
        assert state.state_changes == 0


async def test_jira_create_applied_then_answer_lost_while_search_lags_opens_one_issue() -> None:
    faults = EmulatorFaults(reset_after_apply={"create_issue"}, search_lag_s=1.0)
    async with _emulated("jira", faults) as (adapter, state, _):
        with pytest.raises(TransientToolError):
            await adapter.open_ticket("inc-1", "LSASS dump on PRD01", "1 alert")
        state.faults.reset_after_apply = set()
        # The retry's first search cannot see the issue yet; the adapter keeps searching.
        ticket = await adapter.open_ticket("inc-1", "LSASS dump on PRD01", "1 alert")
        assert ticket.key == "inc-1" and ticket.id == "SEC-1"
        assert state.state_changes == 1
        assert len(_requests(state, "POST", "/rest/api/3/issue")) == 1
        assert (await adapter.find_ticket("inc-1")) == ticket


async def test_jira_another_process_finds_the_issue_once_search_catches_up() -> None:
    faults = EmulatorFaults(search_lag_s=0.3)
    async with _emulated("jira", faults) as (adapter, state, url):
        ticket = await adapter.open_ticket("inc-1", "title", "")
        other = SPECS["jira"].build(SPECS["jira"].emulator_settings(url), None)
        try:
            assert await other.find_ticket("inc-1") is None  # the lag, seen from outside
            await asyncio.sleep(0.35)
            assert (await other.open_ticket("inc-1", "title", "")).id == ticket.id
        finally:
            await other.aclose()
        assert state.state_changes == 1


async def test_jira_close_applied_then_answer_lost_is_found_closed_on_retry() -> None:
    faults = EmulatorFaults(reset_after_apply={"transition_issue"})
    async with _emulated("jira", faults) as (adapter, state, _):
        ticket = await adapter.open_ticket("inc-1", "title", "")
        with pytest.raises(TransientToolError):
            await adapter.close_ticket(ticket.id, "Verdict: benign")
        closed = await adapter.close_ticket(ticket.id, "Verdict: benign")
        assert closed.state is TicketState.CLOSED and closed.comments == ["Verdict: benign"]
        assert state.state_changes == 2  # the open and one close


class _AnotherWorkerActsFirst(httpx.AsyncBaseTransport):
    """Sends each matching write twice: a copy first (another worker closing the ticket between
    our read and our write), then ours, which the vendor may refuse as no longer valid."""

    def __init__(self, method: str, path_part: str) -> None:
        self._inner = httpx.AsyncHTTPTransport()
        self._method, self._path_part = method, path_part

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == self._method and self._path_part in request.url.path:
            body = await request.aread()
            copy = httpx.Request(request.method, request.url, headers=request.headers, content=body)
            await (await self._inner.handle_async_request(copy)).aclose()
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


async def test_jira_already_done_error_answer_is_success() -> None:
    faults = EmulatorFaults(already_in_state_error=True)
    async with _emulated("jira", faults, _AnotherWorkerActsFirst("POST", "/transitions")) as (
        adapter,
        state,
        _,
    ):
        ticket = await adapter.open_ticket("inc-1", "title", "")
        closed = await adapter.close_ticket(ticket.id, "Verdict: benign")
        assert closed.state is TicketState.CLOSED
        assert _requests(state, "POST", "/transitions") == [204, 400]
        assert state.state_changes == 2


# --- ServiceNow ---------------------------------------------------------------------------------


async def test_servicenow_wrong_password_is_an_auth_error() -> None:
    async with _emulated("servicenow", password=SecretStr("wrong")) as (adapter, _, _):
        with pytest.raises(AuthError, match="User Not Authenticated"):
            await adapter.find_ticket("inc-1")


async def test_servicenow_user_without_write_role_is_an_auth_error() -> None:
    async with _emulated("servicenow", username="garrison.viewer") as (adapter, state, _):
        assert await adapter.find_ticket("inc-1") is None
        with pytest.raises(AuthError, match="403"):
            await adapter.open_ticket("inc-1", "title", "")
        assert state.state_changes == 0


async def test_servicenow_create_applied_then_answer_lost_opens_one_incident() -> None:
    faults = EmulatorFaults(reset_after_apply={"create_incident"})
    async with _emulated("servicenow", faults) as (adapter, state, _):
        with pytest.raises(TransientToolError):
            await adapter.open_ticket("inc-1", "LSASS dump on PRD01", "1 alert")
        state.faults.reset_after_apply = set()
        ticket = await adapter.open_ticket("inc-1", "LSASS dump on PRD01", "1 alert")
        assert ticket.id == "INC0010001" and ticket.key == "inc-1"
        assert state.state_changes == 1
        assert len(_requests(state, "POST", "/api/now/table/incident")) == 1


async def test_servicenow_resolve_applied_then_answer_lost_is_found_resolved_on_retry() -> None:
    faults = EmulatorFaults(reset_after_apply={"update_incident"})
    async with _emulated("servicenow", faults) as (adapter, state, _):
        ticket = await adapter.open_ticket("inc-1", "title", "")
        with pytest.raises(TransientToolError):
            await adapter.close_ticket(ticket.id, "Verdict: benign")
        closed = await adapter.close_ticket(ticket.id, "Verdict: benign")
        assert closed.state is TicketState.CLOSED and closed.comments == ["Verdict: benign"]
        assert state.state_changes == 2


async def test_servicenow_already_resolved_refusal_is_success() -> None:
    faults = EmulatorFaults(already_in_state_error=True)
    race = _AnotherWorkerActsFirst("PATCH", "/api/now/table/incident/")
    async with _emulated("servicenow", faults, race) as (adapter, state, _):
        ticket = await adapter.open_ticket("inc-1", "title", "")
        closed = await adapter.close_ticket(ticket.id, "Verdict: benign")
        assert closed.state is TicketState.CLOSED
        patches = [e.status for e in state.ledger if e.method == "PATCH"]
        assert patches == [200, 403]
        assert state.state_changes == 2


async def test_servicenow_closed_incident_takes_no_more_work_notes() -> None:
    async with _emulated("servicenow", close_state=7) as (adapter, state, _):
        ticket = await adapter.open_ticket("inc-1", "title", "")
        await adapter.comment(ticket.id, "isolate_host PRD01: executed")
        closed = await adapter.close_ticket(ticket.id, "Verdict: malicious")
        assert closed.comments == ["isolate_host PRD01: executed", "Verdict: malicious"]
        with pytest.raises(AuthError, match="ACL"):
            await adapter.comment(ticket.id, "late note")
        assert state.state_changes == 3
