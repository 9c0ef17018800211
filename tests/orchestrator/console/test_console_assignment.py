"""Assigning incidents from the console: take one, assign another person of the directory,
unassign; each change audited; a stale form (no CSRF token) and a person outside the directory
refused with nothing stored; the list shows the assignee and filters by mine, unassigned and a
person; hostile text in the assignee field is escaped."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from orchestrator.console.rendering import REFRESH_HEADER
from orchestrator.server.tokens import ApiTokens, digest
from tests.orchestrator.console.seed import (
    client,
    console,
    csrf_of,
    passwords,
    seed_incident,
    sign_in,
)

PATH = "/console/incidents/inc-1/assignment"


async def test_take_reassign_and_unassign_an_incident_each_audited(tmp_path: Path) -> None:
    passwords(tmp_path / "console-passwords.yaml", "alice")
    async with console(tmp_path) as c, client(c.app) as http:
        await seed_incident(c.store, "inc-1")
        await sign_in(http, "alice")
        page = await http.get("/console/incidents/inc-1")
        assert "unassigned" in page.text and "Assign to me" in page.text
        token = csrf_of(page.text)

        taken = await http.post(PATH, data={"csrf_token": token, "assignee": "alice"})
        assert taken.status_code == 303
        assert taken.headers["location"] == "/console/incidents/inc-1"
        page = await http.get("/console/incidents/inc-1")
        assert "Assigned to alice." in page.text and "Assign to me" not in page.text

        other = await http.post(PATH, data={"csrf_token": token, "assignee": "Carol"})
        assert other.status_code == 303
        assignment = await c.store.assignments.of("inc-1")
        assert assignment is not None
        assert (assignment.assignee, assignment.assigned_by) == ("carol", "alice")

        gone = await http.post(PATH, data={"csrf_token": token, "unassign": "1"})
        assert gone.status_code == 303 and await c.store.assignments.of("inc-1") is None

        audit = [e for e in await c.store.audit_entries("inc-1") if e.type == "incident.assigned"]
        assert [(e.actor, e.outcome, e.detail) for e in audit] == [
            ("alice", "assigned", {"assignee": "alice", "previous": ""}),
            ("alice", "assigned", {"assignee": "carol", "previous": "alice"}),
            ("alice", "unassigned", {"assignee": "", "previous": "carol"}),
        ]


async def test_the_lists_auto_refresh_leaves_the_flash_message_for_the_next_page(
    tmp_path: Path,
) -> None:
    """The approvals and incidents lists refresh themselves every few seconds; one that runs
    between a decision's answer and the page it redirects to must not take the message."""
    passwords(tmp_path / "console-passwords.yaml", "alice")
    async with console(tmp_path) as c, client(c.app) as http:
        await seed_incident(c.store, "inc-1")
        await sign_in(http, "alice")
        token = csrf_of((await http.get("/console/incidents/inc-1")).text)
        taken = await http.post(PATH, data={"csrf_token": token, "assignee": "alice"})
        assert taken.status_code == 303

        refreshed = await http.get("/console/incidents", headers={REFRESH_HEADER: "1"})
        assert refreshed.status_code == 200 and "Assigned to alice." not in refreshed.text
        shown = await http.get("/console/incidents/inc-1")
        assert "Assigned to alice." in shown.text
        again = await http.get("/console/incidents/inc-1")
        assert "Assigned to alice." not in again.text  # shown once


async def test_a_form_without_the_csrf_token_or_naming_nobody_changes_nothing(
    tmp_path: Path,
) -> None:
    passwords(tmp_path / "console-passwords.yaml", "alice")
    async with console(tmp_path) as c, client(c.app) as http:
        await seed_incident(c.store, "inc-1")
        await sign_in(http, "alice")
        token = csrf_of((await http.get("/console/incidents/inc-1")).text)

        for bad in ({}, {"csrf_token": "x" * 43}):
            answer = await http.post(PATH, data={"assignee": "alice"} | bad)
            assert answer.status_code == 403 and "not sent from the console" in answer.text

        for nobody in ("mallory", "<script>alert(1)</script>", ""):
            answer = await http.post(PATH, data={"csrf_token": token, "assignee": nobody})
            assert answer.status_code == 303, nobody
        page = await http.get("/console/incidents/inc-1")
        assert "Refused: that person is not in the approver directory" in page.text
        assert "<script>alert(1)</script>" not in page.text
        missing = await http.post(
            "/console/incidents/inc-404/assignment", data={"csrf_token": token, "assignee": "bob"}
        )
        assert missing.headers["location"] == "/console/incidents"

        assert await c.store.assignments.of("inc-1") is None
        assert await c.store.assignments.of("inc-404") is None
        audit = await c.store.audit_entries("inc-1")
        assert not any(e.type == "incident.assigned" for e in audit)
        refused = [e for e in await c.store.audit_tail(20) if e.type == "console.request_refused"]
        assert any(e.outcome.startswith("422: assignment refused") for e in refused)  # rate-limited


async def test_the_list_shows_the_assignee_and_filters_by_it(tmp_path: Path) -> None:
    passwords(tmp_path / "console-passwords.yaml", "alice")
    async with console(tmp_path) as c, client(c.app) as http:
        for incident_id in ("inc-1", "inc-2", "inc-3"):
            await seed_incident(c.store, incident_id)
        await c.store.assignments.assign("inc-1", "alice", "alice", _now())
        await c.store.assignments.assign("inc-2", "bob", "alice", _now())
        await sign_in(http, "alice")

        def listed(html: str) -> set[str]:
            return {i for i in ("inc-1", "inc-2", "inc-3") if f">{i}</a>" in html}

        everything = (await http.get("/console/incidents")).text
        assert listed(everything) == {"inc-1", "inc-2", "inc-3"}
        assert '<td class="assignee">bob</td>' in everything
        assert '<option value="carol"' in everything  # a person of the directory to filter by
        wanted = {"mine": {"inc-1"}, "unassigned": {"inc-3"}, "bob": {"inc-2"}, "carol": set()}
        for choice, expected in wanted.items():
            html = (await http.get("/console/incidents", params={"assignee": choice})).text
            assert listed(html) == expected, choice
        # A name outside the directory is no filter at all (as any unknown filter value).
        html = (await http.get("/console/incidents", params={"assignee": "mallory"})).text
        assert listed(html) == {"inc-1", "inc-2", "inc-3"}


def _now() -> datetime:

    return datetime.now(UTC)


async def test_the_api_shows_the_assignee(tmp_path: Path) -> None:
    async with console(tmp_path) as c, client(c.app) as http:
        c.deps.tokens = ApiTokens(tokens={"alice": digest("a-read-token")})
        await seed_incident(c.store, "inc-1")
        await seed_incident(c.store, "inc-2")
        await c.store.assignments.assign("inc-1", "bob", "alice", _now())
        headers = {"authorization": "Bearer a-read-token"}

        listed = (await http.get("/api/incidents", headers=headers)).json()
        assert {i["id"]: i["assignee"] for i in listed} == {"inc-1": "bob", "inc-2": None}
        shown = (await http.get("/api/incidents/inc-1", headers=headers)).json()
        assert shown["assignment"]["assignee"] == "bob"
        assert shown["assignment"]["assigned_by"] == "alice"
        other = (await http.get("/api/incidents/inc-2", headers=headers)).json()
        assert other["assignment"] is None
