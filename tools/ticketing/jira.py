"""Jira Cloud (REST API v3) as Garrison's ticketing system.

An incident is an issue in one project, carrying Garrison's incident key as a label
(`garrison-<encoded key>`); comments and the closing summary are comments in Atlassian Document
Format; closing runs the workflow transition named by `GARRISON_JIRA_DONE_TRANSITION`. The ticket
id Garrison sees is the issue key (`SEC-12`).

Jira takes no idempotency key, and its JQL search lags behind issue creation. So the adapter
remembers, per process, the issues it created or found (a direct GET by issue key does not lag),
and when a create went out but no answer came back (dropped connection, timeout, 5xx) it keeps
searching for up to `search_settle_s` after that attempt before it creates again. A retry in
another process inside that window, after such a lost answer, can still open a second issue: no
Jira API closes that gap.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any
from urllib.parse import quote, unquote

import httpx
from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from tools.errors import PermanentToolError
from tools.http import Priority, RateBudget, raise_for_status, send, tls_context
from tools.results import Ticket, TicketState
from tools.ticketing.base import has_marker, with_marker
from tools.vendor_settings import VendorSettings

VENDOR = "jira"
API = "/rest/api/3"
LABEL_PREFIX = "garrison-"
MAX_LABEL = 255
MAX_SUMMARY = 255
ISSUE_FIELDS = "summary,status,labels"
PAGE = 100
POLL_S = 0.25


class JiraSettings(VendorSettings):
    """`GARRISON_JIRA_*`: the site (`https://<site>.atlassian.net`), an Atlassian account's email
    and API token (basic auth), and the project issues are opened in."""

    model_config = SettingsConfigDict(env_prefix="GARRISON_JIRA_", extra="ignore", frozen=True)

    email: str = Field(min_length=1)
    api_token: SecretStr
    project: str = Field(min_length=1)
    issue_type: str = Field(default="Task", min_length=1)
    done_transition: str = Field(default="Done", min_length=1)
    search_settle_s: float = Field(default=10.0, ge=0)


# --- wire mappers --------------------------------------------------------------------------------


def _label(key: str) -> str:
    """Garrison's key as a Jira label: labels cannot hold spaces, so everything but unreserved
    URL characters is percent-encoded, which keeps the key recoverable from the label."""
    label = LABEL_PREFIX + quote(key, safe="")
    if len(label) > MAX_LABEL:
        raise PermanentToolError(f"{VENDOR}: incident key too long for a Jira label: {key[:64]}...")
    return label


def _key_from_labels(labels: list[str]) -> str | None:
    for label in labels:
        if label.startswith(LABEL_PREFIX):
            return unquote(label[len(LABEL_PREFIX) :])
    return None


def _jql_string(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def _summary(title: str) -> str:
    """Jira summaries are one line of at most 255 characters."""
    line = " ".join(title.split())
    return line[:MAX_SUMMARY]


def _adf(text: str) -> dict[str, Any]:
    """Plain text as an Atlassian Document: one paragraph per line (ADF text nodes cannot be
    empty, so a blank line is an empty paragraph)."""
    paragraphs: list[dict[str, Any]] = []
    for line in text.split("\n"):
        content = [{"type": "text", "text": line}] if line else []
        paragraphs.append({"type": "paragraph", "content": content})
    return {"type": "doc", "version": 1, "content": paragraphs}


def _adf_text(node: Any) -> str:
    """An Atlassian Document back to plain text: block nodes end lines, hardBreak is a newline."""
    if not isinstance(node, dict):
        return ""
    kind = node.get("type")
    if kind == "text":
        return str(node.get("text", ""))
    if kind == "hardBreak":
        return "\n"
    parts = [_adf_text(child) for child in node.get("content") or []]
    if kind == "doc":
        return "\n".join(parts)
    return "".join(parts)


def _is_done(issue: dict[str, Any]) -> bool:
    status = issue.get("fields", {}).get("status") or {}
    return (status.get("statusCategory") or {}).get("key") == "done"


def _to_ticket(issue: dict[str, Any], comments: list[dict[str, Any]]) -> Ticket:
    fields = issue.get("fields", {})
    return Ticket(
        id=str(issue["key"]),
        key=_key_from_labels(list(fields.get("labels") or [])) or "",
        title=str(fields.get("summary") or ""),
        state=TicketState.CLOSED if _is_done(issue) else TicketState.OPEN,
        comments=[_adf_text(c.get("body")) for c in comments],
    )


def _pick_transition(transitions: list[dict[str, Any]], name: str) -> str | None:
    """The id of the transition called `name`, or leading to a status called `name`."""
    wanted = name.casefold()
    for transition in transitions:
        to = transition.get("to") or {}
        if wanted in (
            str(transition.get("name", "")).casefold(),
            str(to.get("name", "")).casefold(),
        ):
            return str(transition["id"])
    return None


# --- the adapter ---------------------------------------------------------------------------------


class JiraTicketing:
    """Implements `TicketingClient` over Jira Cloud REST v3."""

    def __init__(
        self, settings: JiraSettings, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self._settings = settings
        self._client = httpx.AsyncClient(
            verify=tls_context(),
            base_url=settings.base_url.rstrip("/"),
            auth=httpx.BasicAuth(settings.email, settings.api_token.get_secret_value()),
            transport=transport,
            timeout=httpx.Timeout(settings.timeout_s, connect=min(10.0, settings.timeout_s)),
            headers={"Accept": "application/json"},
        )
        self._budget = RateBudget(settings.rate_per_minute)
        self._known: dict[str, str] = {}  # Garrison key -> issue key, created or found here
        self._uncertain: dict[str, float] = {}  # Garrison key -> when a create lost its answer

    async def aclose(self) -> None:
        await self._client.aclose()

    async def find_ticket(self, key: str) -> Ticket | None:
        issue_key = await self._locate(key)
        return None if issue_key is None else await self._ticket(issue_key)

    async def open_ticket(self, key: str, title: str, description: str) -> Ticket:
        issue_key = await self._locate(key)
        if issue_key is None:
            issue_key = await self._create(key, title, description)
        return await self._ticket(issue_key)

    async def comment(
        self, ticket_id: str, text: str, *, key: str | None = None, recheck: bool = False
    ) -> None:
        """Post a comment; with `key`, once: a recheck reads the issue's comments (a direct read,
        which does not lag as search does) for the key's marker before posting."""
        path = f"{API}/issue/{quote(ticket_id)}/comment"
        if key is not None and recheck:
            comments = await self._comments(path)
            if has_marker((_adf_text(c.get("body")) for c in comments), key):
                return
        await self._call("POST", path, write=True, json={"body": _adf(with_marker(text, key))})

    async def close_ticket(self, ticket_id: str, summary: str) -> Ticket:
        ticket = await self._ticket(ticket_id)
        if ticket.state is TicketState.CLOSED:
            return ticket
        path = f"{API}/issue/{quote(ticket_id)}/transitions"
        answer = (await self._call("GET", path)).json()
        transitions = list(answer.get("transitions") or [])
        transition = _pick_transition(transitions, self._settings.done_transition)
        if transition is None:
            names = ", ".join(str(t.get("name")) for t in transitions) or "none"
            raise PermanentToolError(
                f"{VENDOR}: {ticket_id} has no transition {self._settings.done_transition!r} "
                f"(available: {names}); set GARRISON_JIRA_DONE_TRANSITION"
            )
        body = {
            "transition": {"id": transition},
            "update": {"comment": [{"add": {"body": _adf(summary)}}]},
        }
        response = await self._call("POST", path, write=True, check=False, json=body)
        if response.status_code == 400:
            # Jira refuses a transition that is not valid from the current status: what it says
            # when another worker closed the issue since our read. Closed is what we wanted.
            after = await self._ticket(ticket_id)
            if after.state is TicketState.CLOSED:
                return after
        raise_for_status(response, VENDOR)
        return await self._ticket(ticket_id)

    # --- internals -------------------------------------------------------------------------------

    async def _call(
        self, method: str, path: str, *, write: bool = False, check: bool = True, **kwargs: Any
    ) -> httpx.Response:
        priority = Priority.CONTAINMENT if write else Priority.ENRICHMENT
        return await send(
            self._client,
            method,
            path,
            vendor=VENDOR,
            budget=self._budget,
            priority=priority,
            check=check,
            **kwargs,
        )

    async def _locate(self, key: str) -> str | None:
        known = self._known.get(key)
        if known is not None:
            return known
        found = await self._search(key)
        if found is None and key in self._uncertain:
            found = await self._search_until_settled(key)
        if found is not None:
            self._known[key] = found
            self._uncertain.pop(key, None)
        return found

    async def _search(self, key: str) -> str | None:
        label = _label(key)
        jql = (
            f"project = {_jql_string(self._settings.project)} AND labels = {_jql_string(label)}"
            " ORDER BY created ASC"
        )
        params = {"jql": jql, "fields": "labels", "maxResults": "10"}
        answer = (await self._call("GET", f"{API}/search/jql", params=params)).json()
        for issue in answer.get("issues") or []:
            if label in (issue.get("fields", {}).get("labels") or []):
                return str(issue["key"])
        return None

    async def _search_until_settled(self, key: str) -> str | None:
        """A create of this key lost its answer: it may exist and be hidden from search for a
        while. Keep searching until `search_settle_s` after that attempt."""
        deadline = self._uncertain[key] + self._settings.search_settle_s
        while (remaining := deadline - time.monotonic()) > 0:
            await asyncio.sleep(min(POLL_S, remaining))
            found = await self._search(key)
            if found is not None:
                return found
        return None

    async def _create(self, key: str, title: str, description: str) -> str:
        fields = {
            "project": {"key": self._settings.project},
            "issuetype": {"name": self._settings.issue_type},
            "summary": _summary(title),
            "description": _adf(description),
            "labels": [_label(key)],
        }
        # Until an answer says whether the issue was created, it may exist: a transport failure
        # raised by the call below leaves the key uncertain.
        self._uncertain[key] = time.monotonic()
        response = await self._call(
            "POST", f"{API}/issue", write=True, check=False, json={"fields": fields}
        )
        if response.status_code < 500:
            self._uncertain.pop(key, None)  # an answer that says whether it was created
        raise_for_status(response, VENDOR)
        issue_key = str(response.json()["key"])
        self._known[key] = issue_key
        return issue_key

    async def _ticket(self, issue_key: str) -> Ticket:
        path = f"{API}/issue/{quote(issue_key)}"
        issue = (await self._call("GET", path, params={"fields": ISSUE_FIELDS})).json()
        return _to_ticket(issue, await self._comments(f"{path}/comment"))

    async def _comments(self, path: str) -> list[dict[str, Any]]:
        """Every comment of an issue (`path` is its `/comment` resource), oldest first."""
        comments: list[dict[str, Any]] = []
        while True:
            params = {"startAt": str(len(comments)), "maxResults": str(PAGE), "orderBy": "created"}
            page = (await self._call("GET", path, params=params)).json()
            batch = list(page.get("comments") or [])
            comments.extend(batch)
            if not batch or len(comments) >= int(page.get("total", 0)):
                return comments
