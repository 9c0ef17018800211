"""The shared vendor plumbing: error mapping, Retry-After, the rate budget's priorities, vendor
settings errors, and the emulator fault knobs over real loopback HTTP."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr
from pydantic_settings import SettingsConfigDict

from tools.emulators.base import EmulatorFaults, EmulatorState, FaultMiddleware, after_apply
from tools.emulators.serve import serve
from tools.errors import AuthError, NotFoundError, PermanentToolError, TransientToolError
from tools.http import Priority, RateBudget, raise_for_status, retry_after_seconds, send
from tools.vendor_settings import VendorConfigError, VendorSettings, load_vendor_settings


def _response(status: int, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(
        status, headers=headers, text="body", request=httpx.Request("POST", "https://v.test/x")
    )


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (429, TransientToolError),
        (503, TransientToolError),
        (401, AuthError),
        (403, AuthError),
        (404, NotFoundError),
        (400, PermanentToolError),
        (409, PermanentToolError),
    ],
)
def test_status_codes_map_to_the_error_tree_once(status: int, error: type[Exception]) -> None:
    with pytest.raises(error, match=f"acme: POST /x -> {status}"):
        raise_for_status(_response(status), "acme")


def test_success_raises_nothing() -> None:
    raise_for_status(_response(204), "acme")


def test_retry_after_reads_seconds_and_http_dates() -> None:
    assert retry_after_seconds({"retry-after": "7"}) == 7.0
    assert retry_after_seconds({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 0.0
    assert retry_after_seconds({}) is None
    with pytest.raises(TransientToolError) as raised:
        raise_for_status(_response(429, {"Retry-After": "3"}), "acme")
    assert raised.value.retry_after_s == 3.0


async def test_budget_serves_containment_before_waiting_enrichment() -> None:
    budget = RateBudget(rate_per_minute=600, burst=1)  # one token, then one every 0.1 s
    await budget.acquire()
    order: list[str] = []

    async def take(name: str, priority: Priority) -> None:
        await budget.acquire(priority)
        order.append(name)

    enrichment = [asyncio.create_task(take(f"read{i}", Priority.ENRICHMENT)) for i in range(3)]
    await asyncio.sleep(0.01)
    containment = asyncio.create_task(take("isolate", Priority.CONTAINMENT))
    await asyncio.gather(*enrichment, containment)
    assert order[0] == "isolate"


class AcmeSettings(VendorSettings):
    model_config = SettingsConfigDict(env_prefix="GARRISON_ACME_", extra="ignore")

    client_id: str
    client_secret: SecretStr


def test_incomplete_vendor_settings_name_the_missing_variables(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GARRISON_ACME_BASE_URL", "https://acme.test")
    monkeypatch.setenv("GARRISON_ACME_CLIENT_ID", "id")
    with pytest.raises(VendorConfigError, match="GARRISON_ACME_CLIENT_SECRET is required"):
        load_vendor_settings(AcmeSettings)
    monkeypatch.setenv("GARRISON_ACME_CLIENT_SECRET", "s3cret")
    settings = load_vendor_settings(AcmeSettings)
    assert settings.client_secret.get_secret_value() == "s3cret"
    assert "s3cret" not in repr(settings)


def _app(state: EmulatorState) -> FaultMiddleware:
    app = FastAPI()
    hosts: set[str] = set()

    @app.post("/contain/{host}")
    async def contain(host: str) -> object:
        if host not in hosts:
            hosts.add(host)
            state.changed()
        dropped = await after_apply(state, "contain")
        return dropped if dropped is not None else {"contained": sorted(hosts)}

    return FaultMiddleware(app, state)


async def test_emulator_faults_over_loopback() -> None:
    state = EmulatorState(
        faults=EmulatorFaults.parse("fail_5xx=1;rate_limit_429=1;retry_after_s=2")
    )
    async with serve(_app(state)) as base_url, httpx.AsyncClient(base_url=base_url) as client:
        with pytest.raises(TransientToolError):
            await send(client, "POST", "/contain/PRD01", vendor="acme")
        with pytest.raises(TransientToolError) as limited:
            await send(client, "POST", "/contain/PRD01", vendor="acme")
        assert limited.value.retry_after_s == 2.0
        ok = await send(client, "POST", "/contain/PRD01", vendor="acme")
        assert ok.json() == {"contained": ["PRD01"]}

        state.faults.reset_after_apply = {"contain"}
        with pytest.raises(TransientToolError):
            await send(client, "POST", "/contain/WS02", vendor="acme")
        state.faults.reset_after_apply = set()
        state.faults.latency_ms = 200
        started = time.monotonic()
        again = await send(client, "POST", "/contain/WS02", vendor="acme")
        assert time.monotonic() - started >= 0.2
    assert again.json() == {"contained": ["PRD01", "WS02"]}  # the dropped call had applied
    assert state.state_changes == 2
    assert [e.status for e in state.ledger][:3] == [503, 429, 200]


def test_fault_strings_are_validated() -> None:
    with pytest.raises(ValueError, match="unknown knob"):
        EmulatorFaults.parse("explode=1")
    with pytest.raises(ValueError):
        EmulatorFaults.parse("fail_5xx=-1")
