"""ServiceNow (Table API) as Garrison's ticketing system.

An incident is a record of the `incident` table whose `correlation_id` carries Garrison's
incident key; comments are work notes (read back from `sys_journal_field`); closing sets the
incident's state to Resolved (6) or Closed (7) with a close code and the summary as close notes.
The ticket id Garrison sees is the incident number (`INC0010001`).

The Table API reads from the database, so a search by correlation id sees an incident as soon as
it exists: a retry after a create whose answer was lost finds it and opens no second one.
"""

from __future__ import annotations

from typing import Any

import httpx
from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from tools.errors import NotFoundError, PermanentToolError
from tools.http import Priority, RateBudget, raise_for_status, send, tls_context
from tools.results import Ticket, TicketState
from tools.ticketing.base import has_marker, with_marker
from tools.vendor_settings import VendorSettings

VENDOR = "servicenow"
INCIDENTS = "/api/now/table/incident"
JOURNAL = "/api/now/table/sys_journal_field"
FIELDS = "sys_id,number,short_description,state,correlation_id,close_notes"
CLOSED_STATES = ("6", "7", "8")  # Resolved, Closed, Canceled
MAX_CORRELATION_ID = 100
MAX_SHORT_DESCRIPTION = 160
PAGE = 100


class ServiceNowSettings(VendorSettings):
    """`GARRISON_SERVICENOW_*`: the instance (`https://<instance>.service-now.com`), an
    integration user's name and password (basic auth), and how incidents are routed and closed."""

    model_config = SettingsConfigDict(
        env_prefix="GARRISON_SERVICENOW_", extra="ignore", frozen=True
    )

    username: str = Field(min_length=1)
    password: SecretStr
    assignment_group: str | None = None
    close_state: int = Field(default=6, ge=6, le=7)  # 6 Resolved, 7 Closed
    close_code: str = Field(default="Solution provided", min_length=1)


# --- wire mappers --------------------------------------------------------------------------------


def _query_value(key: str) -> str:
    """An encoded query joins conditions with `^`, which therefore cannot appear in a value."""
    if "^" in key or not key or len(key) > MAX_CORRELATION_ID:
        raise PermanentToolError(
            f"{VENDOR}: incident key {key[:64]!r} cannot be a correlation_id "
            f"(1 to {MAX_CORRELATION_ID} characters, no '^')"
        )
    return key


def _short_description(title: str) -> str:
    return " ".join(title.split())[:MAX_SHORT_DESCRIPTION]


def _to_ticket(record: dict[str, Any], notes: list[str]) -> Ticket:
    closed = str(record.get("state", "")) in CLOSED_STATES
    close_notes = str(record.get("close_notes") or "")
    comments = [*notes, close_notes] if closed and close_notes else notes
    return Ticket(
        id=str(record["number"]),
        key=str(record.get("correlation_id") or ""),
        title=str(record.get("short_description") or ""),
        state=TicketState.CLOSED if closed else TicketState.OPEN,
        comments=comments,
    )


def _results(response: httpx.Response) -> list[dict[str, Any]]:
    result = response.json().get("result")
    return list(result) if isinstance(result, list) else [result] if result else []


# --- the adapter ---------------------------------------------------------------------------------


class ServiceNowTicketing:
    """Implements `TicketingClient` over the ServiceNow Table API."""

    def __init__(
        self, settings: ServiceNowSettings, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self._settings = settings
        self._client = httpx.AsyncClient(
            verify=tls_context(),
            base_url=settings.base_url.rstrip("/"),
            auth=httpx.BasicAuth(settings.username, settings.password.get_secret_value()),
            transport=transport,
            timeout=httpx.Timeout(settings.timeout_s, connect=min(10.0, settings.timeout_s)),
            headers={"Accept": "application/json"},
        )
        self._budget = RateBudget(settings.rate_per_minute)

    async def aclose(self) -> None:
        await self._client.aclose()

    async def find_ticket(self, key: str) -> Ticket | None:
        record = await self._by_correlation_id(key)
        return None if record is None else await self._ticket(record)

    async def open_ticket(self, key: str, title: str, description: str) -> Ticket:
        record = await self._by_correlation_id(key)
        if record is None:
            body = {
                "short_description": _short_description(title),
                "description": description,
                "correlation_id": _query_value(key),
                "correlation_display": "Garrison",
            }
            if self._settings.assignment_group:
                body["assignment_group"] = self._settings.assignment_group
            response = await self._call("POST", INCIDENTS, write=True, json=body)
            record = _results(response)[0]
        return await self._ticket(record)

    async def comment(
        self, ticket_id: str, text: str, *, key: str | None = None, recheck: bool = False
    ) -> None:
        """A work note; with `key`, once: a recheck reads the incident's work notes (the journal
        is read from the database, so a note that landed is there) for the key's marker."""
        record = await self._by_number(ticket_id)
        if key is not None and recheck and has_marker(await self._notes(record), key):
            return
        path = f"{INCIDENTS}/{record['sys_id']}"
        await self._call("PATCH", path, write=True, json={"work_notes": with_marker(text, key)})

    async def close_ticket(self, ticket_id: str, summary: str) -> Ticket:
        record = await self._by_number(ticket_id)
        if str(record.get("state")) in CLOSED_STATES:
            return await self._ticket(record)
        body = {
            "state": str(self._settings.close_state),
            "close_code": self._settings.close_code,
            "close_notes": summary,
        }
        path = f"{INCIDENTS}/{record['sys_id']}"
        response = await self._call("PATCH", path, write=True, check=False, json=body)
        if response.status_code == 403:
            # A closed incident is read-only: the refusal when another worker closed it since
            # our read. Closed is what we wanted.
            after = await self._by_number(ticket_id)
            if str(after.get("state")) in CLOSED_STATES:
                return await self._ticket(after)
        raise_for_status(response, VENDOR)
        return await self._ticket(_results(response)[0])

    # --- internals -------------------------------------------------------------------------------

    async def _call(
        self, method: str, path: str, *, write: bool = False, check: bool = True, **kwargs: Any
    ) -> httpx.Response:
        priority = Priority.CONTAINMENT if write else Priority.ENRICHMENT
        params = {"sysparm_exclude_reference_link": "true", **kwargs.pop("params", {})}
        return await send(
            self._client,
            method,
            path,
            vendor=VENDOR,
            budget=self._budget,
            priority=priority,
            check=check,
            params=params,
            **kwargs,
        )

    async def _first(self, query: str) -> dict[str, Any] | None:
        params = {"sysparm_query": query, "sysparm_fields": FIELDS, "sysparm_limit": "1"}
        found = _results(await self._call("GET", INCIDENTS, params=params))
        return found[0] if found else None

    async def _by_correlation_id(self, key: str) -> dict[str, Any] | None:
        return await self._first(f"correlation_id={_query_value(key)}^ORDERBYsys_created_on")

    async def _by_number(self, number: str) -> dict[str, Any]:
        if "^" in number:
            raise NotFoundError(f"{VENDOR}: no incident {number!r}")
        record = await self._first(f"number={number}")
        if record is None:
            raise NotFoundError(f"{VENDOR}: no incident {number!r}")
        return record

    async def _ticket(self, record: dict[str, Any]) -> Ticket:
        return _to_ticket(record, await self._notes(record))

    async def _notes(self, record: dict[str, Any]) -> list[str]:
        """The incident's work notes, oldest first."""
        query = f"element_id={record['sys_id']}^element=work_notes^ORDERBYsys_created_on"
        notes: list[str] = []
        while True:
            params = {
                "sysparm_query": query,
                "sysparm_fields": "value,sys_created_on",
                "sysparm_limit": str(PAGE),
                "sysparm_offset": str(len(notes)),
            }
            page = _results(await self._call("GET", JOURNAL, params=params))
            notes.extend(str(entry.get("value") or "") for entry in page)
            if len(page) < PAGE:
                return notes
