"""ServiceNow's private mappers (records, journal, encoded-query values), its settings, and the
adapter's wire behaviour over `httpx.MockTransport`: basic auth, error bodies, paging of notes."""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from tools.errors import AuthError, NotFoundError, PermanentToolError
from tools.results import TicketState
from tools.ticketing.servicenow import (
    ServiceNowSettings,
    ServiceNowTicketing,
    _query_value,
    _short_description,
    _to_ticket,
)
from tools.vendor_settings import VendorConfigError, load_vendor_settings

RECORD = {
    "sys_id": "a" * 32,
    "number": "INC0010001",
    "short_description": "LSASS dump on PRD01",
    "state": "1",
    "correlation_id": "inc-1",
    "close_notes": "",
}


def _settings(**overrides: Any) -> ServiceNowSettings:
    values: dict[str, Any] = {
        "base_url": "https://acme.service-now.com",
        "username": "garrison",
        "password": SecretStr("pw"),
    }
    return ServiceNowSettings(**(values | overrides))


def test_record_maps_to_a_ticket() -> None:
    ticket = _to_ticket(RECORD, ["isolated"])
    assert (ticket.id, ticket.key, ticket.title) == ("INC0010001", "inc-1", "LSASS dump on PRD01")
    assert ticket.state is TicketState.OPEN and ticket.comments == ["isolated"]


@pytest.mark.parametrize("state", ["6", "7", "8"])
def test_resolved_closed_and_canceled_are_closed_with_the_notes_last(state: str) -> None:
    record = RECORD | {"state": state, "close_notes": "Verdict: benign"}
    ticket = _to_ticket(record, ["isolated"])
    assert ticket.state is TicketState.CLOSED
    assert ticket.comments == ["isolated", "Verdict: benign"]


@pytest.mark.parametrize("key", ["a^b", "", "x" * 101])
def test_keys_that_cannot_be_a_correlation_id_are_refused(key: str) -> None:
    with pytest.raises(PermanentToolError, match="correlation_id"):
        _query_value(key)


def test_short_description_is_one_line_of_at_most_160() -> None:
    assert _short_description("a\nb") == "a b"
    assert len(_short_description("x" * 300)) == 160


def test_settings_name_the_missing_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GARRISON_SERVICENOW_BASE_URL", "https://acme.service-now.com")
    monkeypatch.setenv("GARRISON_SERVICENOW_USERNAME", "garrison")
    monkeypatch.delenv("GARRISON_SERVICENOW_PASSWORD", raising=False)
    with pytest.raises(VendorConfigError, match="GARRISON_SERVICENOW_PASSWORD is required"):
        load_vendor_settings(ServiceNowSettings)
    monkeypatch.setenv("GARRISON_SERVICENOW_PASSWORD", "s3cr3t-value")
    monkeypatch.setenv("GARRISON_SERVICENOW_CLOSE_STATE", "5")
    with pytest.raises(VendorConfigError, match="GARRISON_SERVICENOW_CLOSE_STATE"):
        load_vendor_settings(ServiceNowSettings)
    monkeypatch.setenv("GARRISON_SERVICENOW_CLOSE_STATE", "7")
    settings = load_vendor_settings(ServiceNowSettings)
    assert settings.close_state == 7 and "s3cr3t-value" not in repr(settings)


async def test_notes_are_read_page_by_page_with_basic_auth() -> None:
    notes = [{"value": f"note {i}"} for i in range(130)]
    seen_auth: set[str] = set()

    def answer(request: httpx.Request) -> httpx.Response:
        seen_auth.add(request.headers["authorization"])
        params = request.url.params
        if request.url.path.endswith("/sys_journal_field"):
            assert "element_id=" + "a" * 32 in params["sysparm_query"]
            offset, limit = int(params["sysparm_offset"]), int(params["sysparm_limit"])
            return httpx.Response(200, json={"result": notes[offset : offset + limit]})
        assert params["sysparm_query"].startswith("correlation_id=inc-1^")
        return httpx.Response(200, json={"result": [RECORD]})

    adapter = ServiceNowTicketing(_settings(), httpx.MockTransport(answer))
    ticket = await adapter.find_ticket("inc-1")
    await adapter.aclose()
    assert ticket is not None and ticket.comments == [n["value"] for n in notes]
    assert seen_auth == {"Basic " + base64.b64encode(b"garrison:pw").decode()}


async def test_unknown_number_is_not_found() -> None:
    adapter = ServiceNowTicketing(
        _settings(), httpx.MockTransport(lambda _: httpx.Response(200, json={"result": []}))
    )
    with pytest.raises(NotFoundError, match="INC0999999"):
        await adapter.comment("INC0999999", "hello")
    await adapter.aclose()


async def test_error_bodies_reach_the_message() -> None:
    body = {
        "error": {"message": "User Not Authenticated", "detail": "Required to provide Auth"},
        "status": "failure",
    }
    adapter = ServiceNowTicketing(
        _settings(), httpx.MockTransport(lambda _: httpx.Response(401, json=body))
    )
    with pytest.raises(AuthError, match="User Not Authenticated"):
        await adapter.find_ticket("inc-1")
    await adapter.aclose()


async def test_resolve_sends_state_close_code_and_notes() -> None:
    patched: list[bytes] = []

    def answer(request: httpx.Request) -> httpx.Response:
        if request.method == "PATCH":
            patched.append(request.content)
            return httpx.Response(200, json={"result": RECORD | {"state": "6"}})
        if request.url.path.endswith("/sys_journal_field"):
            return httpx.Response(200, json={"result": []})
        return httpx.Response(200, json={"result": [RECORD]})

    adapter = ServiceNowTicketing(
        _settings(close_code="Workaround provided"), httpx.MockTransport(answer)
    )
    closed = await adapter.close_ticket("INC0010001", "Verdict: benign")
    await adapter.aclose()
    assert closed.state is TicketState.CLOSED
    assert json.loads(patched[0]) == {
        "state": "6",
        "close_code": "Workaround provided",
        "close_notes": "Verdict: benign",
    }
