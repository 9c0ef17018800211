"""Jira's private mappers (labels, ADF, issues, transitions), its settings, and the adapter's
wire behaviour over `httpx.MockTransport`: basic auth, error bodies, and closing after a race."""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from tools.errors import AuthError, PermanentToolError, TransientToolError
from tools.results import TicketState
from tools.ticketing.jira import (
    JiraSettings,
    JiraTicketing,
    _adf,
    _adf_text,
    _key_from_labels,
    _label,
    _pick_transition,
    _summary,
    _to_ticket,
)
from tools.vendor_settings import VendorConfigError, load_vendor_settings

DONE = {"name": "Done", "statusCategory": {"key": "done"}}
TODO = {"name": "To Do", "statusCategory": {"key": "new"}}


def _settings(**overrides: Any) -> JiraSettings:
    values: dict[str, Any] = {
        "base_url": "https://acme.atlassian.net",
        "email": "bot@acme.test",
        "api_token": SecretStr("tok"),
        "project": "SEC",
        "search_settle_s": 0.0,
    }
    return JiraSettings(**(values | overrides))


@pytest.mark.parametrize("key", ["inc-1", "Inc 42/β", 'a"b\\c%d', "x" * 200])
def test_label_keeps_the_key_recoverable_and_spaceless(key: str) -> None:
    label = _label(key)
    assert label.startswith("garrison-") and " " not in label and '"' not in label
    assert _key_from_labels(["other", label]) == key


def test_a_key_too_long_for_a_label_is_refused() -> None:
    with pytest.raises(PermanentToolError, match="too long"):
        _label("x" * 300)


def test_text_round_trips_through_adf_line_by_line() -> None:
    text = "Verdict: malicious (confidence 0.90).\n\nHost PRD01 isolated"
    doc = _adf(text)
    assert doc["type"] == "doc" and doc["version"] == 1
    assert all(p["type"] == "paragraph" for p in doc["content"])
    assert all(n["text"] for p in doc["content"] for n in p["content"])  # no empty text nodes
    assert _adf_text(doc) == text


def test_adf_hard_breaks_and_marks_read_as_text() -> None:
    doc = {
        "type": "doc",
        "version": 1,
        "content": [
            {
                "type": "paragraph",
                "content": [
                    {"type": "text", "text": "bold", "marks": [{"type": "strong"}]},
                    {"type": "hardBreak"},
                    {"type": "text", "text": "next"},
                ],
            }
        ],
    }
    assert _adf_text(doc) == "bold\nnext"
    assert _adf_text(None) == ""


def test_summary_is_one_line_of_at_most_255() -> None:
    assert _summary("LSASS dump\non  PRD01") == "LSASS dump on PRD01"
    assert len(_summary("x" * 400)) == 255


def test_issue_maps_to_a_ticket() -> None:
    issue = {
        "key": "SEC-7",
        "fields": {"summary": "LSASS", "status": DONE, "labels": ["x", _label("inc-1")]},
    }
    comment = {"body": _adf("executed")}
    ticket = _to_ticket(issue, [comment])
    assert (ticket.id, ticket.key, ticket.title) == ("SEC-7", "inc-1", "LSASS")
    assert ticket.state is TicketState.CLOSED and ticket.comments == ["executed"]
    open_issue = {"key": "SEC-8", "fields": {"summary": "s", "status": TODO, "labels": []}}
    assert _to_ticket(open_issue, []).state is TicketState.OPEN


def test_transition_is_picked_by_its_name_or_its_target_status() -> None:
    transitions = [
        {"id": "21", "name": "Start", "to": {"name": "In Progress"}},
        {"id": "41", "name": "Resolve issue", "to": {"name": "Resolved"}},
    ]
    assert _pick_transition(transitions, "resolve ISSUE") == "41"
    assert _pick_transition(transitions, "in progress") == "21"
    assert _pick_transition(transitions, "Done") is None


def test_settings_name_the_missing_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GARRISON_JIRA_BASE_URL", "https://acme.atlassian.net")
    monkeypatch.setenv("GARRISON_JIRA_EMAIL", "bot@acme.test")
    monkeypatch.setenv("GARRISON_JIRA_PROJECT", "SEC")
    monkeypatch.delenv("GARRISON_JIRA_API_TOKEN", raising=False)
    with pytest.raises(VendorConfigError, match="GARRISON_JIRA_API_TOKEN is required"):
        load_vendor_settings(JiraSettings)
    monkeypatch.setenv("GARRISON_JIRA_API_TOKEN", "s3cr3t-value")
    settings = load_vendor_settings(JiraSettings)
    assert settings.issue_type == "Task" and settings.done_transition == "Done"
    assert "s3cr3t-value" not in repr(settings)


class FakeJira:
    """Answers the calls `close_ticket` makes, as a Jira whose issue another worker closes
    between the adapter's read and its transition."""

    def __init__(self, transition_status: int = 400) -> None:
        self.status = TODO
        self.transition_status = transition_status
        self.auth: set[str] = set()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.auth.add(request.headers.get("authorization", ""))
        path = request.url.path
        if path.endswith("/comment"):
            return httpx.Response(200, json={"startAt": 0, "total": 0, "comments": []})
        if path.endswith("/transitions") and request.method == "GET":
            return httpx.Response(200, json={"transitions": [{"id": "31", "name": "Done"}]})
        if path.endswith("/transitions"):
            assert json.loads(request.content)["transition"] == {"id": "31"}
            if self.transition_status == 400:
                self.status = DONE  # the other worker got there first
            message = "Transition id '31' is not valid for this issue."
            body = {"errorMessages": [message], "errors": {}}
            return httpx.Response(self.transition_status, json=body)
        fields = {"summary": "t", "status": self.status, "labels": [_label("inc-1")]}
        return httpx.Response(200, json={"key": "SEC-1", "fields": fields})


async def test_close_refused_because_already_done_is_success_with_basic_auth() -> None:
    fake = FakeJira()
    adapter = JiraTicketing(_settings(), httpx.MockTransport(fake))
    closed = await adapter.close_ticket("SEC-1", "done")
    await adapter.aclose()
    assert closed.state is TicketState.CLOSED
    assert fake.auth == {"Basic " + base64.b64encode(b"bot@acme.test:tok").decode()}


async def test_close_refused_while_still_open_is_permanent_with_jiras_message() -> None:
    adapter = JiraTicketing(_settings(), httpx.MockTransport(FakeJira(transition_status=409)))
    with pytest.raises(PermanentToolError, match="not valid for this issue"):
        await adapter.close_ticket("SEC-1", "done")
    await adapter.aclose()


async def test_missing_done_transition_names_the_setting() -> None:
    adapter = JiraTicketing(_settings(done_transition="Close"), httpx.MockTransport(FakeJira()))
    with pytest.raises(PermanentToolError, match="GARRISON_JIRA_DONE_TRANSITION"):
        await adapter.close_ticket("SEC-1", "done")
    await adapter.aclose()


@pytest.mark.parametrize(("status", "error"), [(401, AuthError), (503, TransientToolError)])
async def test_create_errors_map_once(status: int, error: type[Exception]) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            return httpx.Response(200, json={"issues": [], "isLast": True})
        return httpx.Response(status, json={"errorMessages": ["nope"], "errors": {}})

    adapter = JiraTicketing(_settings(), httpx.MockTransport(answer))
    with pytest.raises(error, match="nope"):
        await adapter.open_ticket("inc-1", "t", "d")
    await adapter.aclose()


async def test_a_create_that_lost_its_answer_searches_again_before_creating() -> None:
    created: list[str] = []
    visible = {"after": 3}  # the search sees the issue from its third call on

    def answer(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path.endswith("/search/jql"):
            visible["after"] -= 1
            issues = [{"key": "SEC-1", "fields": {"labels": [_label("inc-1")]}}]
            return httpx.Response(200, json={"issues": issues if visible["after"] <= 0 else []})
        if request.method == "POST":
            created.append("SEC-1")
            raise httpx.ReadError("connection dropped")
        if path.endswith("/comment"):
            return httpx.Response(200, json={"startAt": 0, "total": 0, "comments": []})
        fields = {"summary": "t", "status": TODO, "labels": [_label("inc-1")]}
        return httpx.Response(200, json={"key": "SEC-1", "fields": fields})

    adapter = JiraTicketing(_settings(search_settle_s=2.0), httpx.MockTransport(answer))
    with pytest.raises(TransientToolError):
        await adapter.open_ticket("inc-1", "t", "d")
    ticket = await adapter.open_ticket("inc-1", "t", "d")
    await adapter.aclose()
    assert ticket.id == "SEC-1" and created == ["SEC-1"]
