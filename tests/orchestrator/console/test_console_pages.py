"""The console's pages over a seeded store: the incidents list and its filters, one incident's
page (alerts, rationale with evidence, risk factors, timeline, audit, ticket and Temporal links),
the approvals queue, and decisions through the approval service with refusals in words."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from orchestrator.store.records import AuditEvent, TicketRecord
from tests.orchestrator.console.seed import (
    NOW,
    client,
    console,
    csrf_of,
    make_alert,
    passwords,
    seed_incident,
    sign_in,
)
from tools.models import Category, Severity, Verdict


async def test_the_incidents_list_filters_by_status_verdict_severity_category_and_age(
    tmp_path: Path,
) -> None:
    passwords(tmp_path / "console-passwords.yaml", "alice")
    async with console(tmp_path) as c, client(c.app) as http:
        await seed_incident(c.store, "inc-new")
        await seed_incident(
            c.store,
            "inc-old",
            opened=NOW - timedelta(days=3),
            severity=Severity.LOW,
            verdict=Verdict.BENIGN,
            category=Category.BENIGN_ACTIVITY,
        )
        await sign_in(http, "alice")

        async def listed(query: str) -> set[str]:
            page = await http.get(f"/console/incidents{query}")
            assert page.status_code == 200
            return {i for i in ("inc-new", "inc-old") if f">{i}</a>" in page.text}

        assert await listed("") == {"inc-new", "inc-old"}
        assert await listed("?severity=low") == {"inc-old"}
        assert await listed("?verdict=malicious") == {"inc-new"}
        assert await listed("?category=benign_activity") == {"inc-old"}
        assert await listed("?age=24h") == {"inc-new"}
        assert await listed("?status=closed") == set()
        assert await listed("?status=triaged&age=7d") == {"inc-new", "inc-old"}
        assert await listed("?severity=nonsense") == {"inc-new", "inc-old"}  # ignored, not a 500


async def test_one_incidents_page_shows_what_was_found_proposed_and_done(tmp_path: Path) -> None:
    passwords(tmp_path / "console-passwords.yaml", "alice")
    async with console(tmp_path) as c, client(c.app) as http:
        approval = await seed_incident(
            c.store,
            "inc-1",
            alerts=[make_alert("a1", process={"name": "procdump.exe", "cmd_line": "procdump -ma"})],
        )
        await c.store.tickets.save(
            TicketRecord(incident_id="inc-1", ticket_id="T-42", opened_at=NOW)
        )
        await c.store.append_audit(
            AuditEvent(
                type="response.rollback",
                actor="garrison-worker",
                incident_id="inc-1",
                outcome="reverted",
                source="activity:response.rollback",
            )
        )
        await sign_in(http, "alice")
        page = (await http.get("/console/incidents/inc-1")).text
        for shown in (
            "Credential theft on WS-7",
            "LSASS memory read by an unsigned process",  # the rationale
            "edr:event:4",  # the evidence it rests on
            "asset_criticality 40",  # a risk factor
            approval.action_hash,
            "procdump -ma",
            "T-42",
            'href="http://127.0.0.1:8233/namespaces/default/workflows/incident-inc-1"',
            'class="tl-rollback"',
            'class="tl-alert"',
            'class="tl-approval"',
            "agent.triage",
        ):
            assert shown in page, shown
        assert (await http.get("/console/incidents/nope")).status_code == 404


async def test_the_queue_counts_down_and_decisions_go_through_the_approval_service(
    tmp_path: Path,
) -> None:
    passwords(tmp_path / "console-passwords.yaml", "alice", "carol")
    async with console(tmp_path) as c, client(c.app) as http:
        mine = await seed_incident(c.store, "inc-mine", requester="alice")
        other = await seed_incident(c.store, "inc-other")
        await sign_in(http, "alice")
        queue = await http.get("/console/approvals")
        assert queue.status_code == 200
        assert queue.text.count('class="countdown"') == 2 and "m " in queue.text
        token = csrf_of(queue.text)

        async def decide(approval_id: str, action_hash: str, decision: str) -> str:
            answer = await http.post(
                f"/console/approvals/{approval_id}/decision",
                data={"csrf_token": token, "decision": decision, "action_hash": action_hash},
            )
            assert answer.status_code == 303
            return (await http.get(answer.headers["location"])).text

        refused = await decide(mine.id, mine.action_hash, "approve")
        assert "You requested this action, so you cannot decide it." in refused
        assert "alice requested this action and cannot decide it" in refused
        changed = await decide(other.id, "0" * 64, "approve")
        assert "The action changed after it was shown to you" in changed
        # Past every check, the service finds no Temporal here: refused as unavailable, in words.
        unavailable = await decide(other.id, other.action_hash, "deny")
        assert "could not reach its workflows" in unavailable
        audit = await c.store.audit_entries(incident_id="inc-mine")
        refusal = [e for e in audit if e.type == "approval.denied_self_approval"]
        assert refusal and refusal[0].source == "channel:console"

    (tmp_path / "2").mkdir()
    passwords(tmp_path / "2" / "console-passwords.yaml", "carol")
    async with console(tmp_path / "2") as c, client(c.app) as http:
        approval = await seed_incident(c.store, "inc-1")
        await sign_in(http, "carol")
        token = csrf_of((await http.get("/console/approvals")).text)
        answer = await http.post(
            f"/console/approvals/{approval.id}/decision",
            data={"csrf_token": token, "decision": "approve", "action_hash": approval.action_hash},
        )
        page = (await http.get(answer.headers["location"])).text
        assert "You are not in an approver group that may decide this request." in page


async def test_a_rationale_line_links_to_the_alert_it_weighs_and_stays_text(
    tmp_path: Path,
) -> None:
    passwords(tmp_path / "console-passwords.yaml", "alice")
    async with console(tmp_path) as c, client(c.app) as http:
        hostile = 'x"><script>alert(1)</script>'
        await seed_incident(
            c.store,
            "inc-1",
            alerts=[make_alert("a1"), make_alert(hostile)],
            rationale=f"score 9.0\nalert {hostile}: 4 pts; rule\nalert a9: 1 pts; not stored",
        )
        await sign_in(http, "alice")
        page = (await http.get("/console/incidents/inc-1")).text
        assert '<tr id="alert-2">' in page
        assert '<a href="#alert-2" class="rests-on">alert x&#34;&gt;&lt;script&gt;' in page
        assert "<li>alert a9: 1 pts; not stored</li>" in page and "<script>alert" not in page
