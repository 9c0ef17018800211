"""Console sessions live in the store: two `garrison server` replicas on one database (two apps,
each its own store connection) share every sign-in, its messages, its sign-out and its
rotation at sign-in; the table holds only the SHA-256 of the cookie's value."""

from __future__ import annotations

import hashlib
from pathlib import Path

from sqlalchemy import text

from orchestrator.console.auth import SECURE_COOKIE
from tests.orchestrator.console.seed import (
    client,
    console,
    csrf_of,
    passwords,
    seed_incident,
    sign_in,
)


async def test_two_replicas_on_one_database_share_sign_ins_messages_and_sign_outs(
    tmp_path: Path,
) -> None:
    passwords(tmp_path / "console-passwords.yaml", "alice")
    async with (
        console(tmp_path) as one,
        console(tmp_path) as two,  # the same database file, another store and app
        client(one.app) as http_one,
        client(two.app) as http_two,
    ):
        await seed_incident(one.store, "inc-1")
        await http_one.get("/console/sign-in")
        planted = http_one.cookies[SECURE_COOKIE]  # the anonymous session's id
        assert (await sign_in(http_one, "alice")).status_code == 303
        cookie = http_one.cookies[SECURE_COOKIE]
        assert cookie != planted  # rotated at sign-in
        http_two.cookies = http_one.cookies  # the load balancer sends the browser anywhere

        page = await http_two.get("/console/incidents/inc-1")
        assert page.status_code == 200 and "Credential theft on WS-7" in page.text

        # a message said by one replica is shown once, by the other
        approval = (await one.store.list_approvals(incident_id="inc-1"))[0]
        decided = await http_one.post(
            f"/console/approvals/{approval.id}/decision",
            data={"csrf_token": csrf_of(page.text), "decision": "maybe"},
        )
        assert decided.status_code == 303
        shown = (await http_two.get("/console/approvals")).text
        assert "Choose approve or deny." in shown
        assert "Choose approve or deny." not in (await http_one.get("/console/approvals")).text

        # the planted id is worth nothing on either replica
        http_two.cookies.set(SECURE_COOKIE, planted, domain="console.test")
        assert (await http_two.get("/console/incidents")).status_code == 303
        http_two.cookies.set(SECURE_COOKIE, cookie, domain="console.test")

        async with one.store.engine.connect() as conn:
            rows = (await conn.execute(text("SELECT id_hash, csrf FROM console_sessions"))).all()
        assert hashlib.sha256(cookie.encode()).hexdigest() in {r.id_hash for r in rows}
        assert all(cookie not in (r.id_hash, r.csrf) for r in rows)

        signed_out = await http_two.post("/console/sign-out", data={"csrf_token": csrf_of(shown)})
        assert signed_out.status_code == 303
        http_one.cookies.set(SECURE_COOKIE, cookie, domain="console.test")  # kept by a thief
        assert (await http_one.get("/console/incidents")).status_code == 303  # to sign-in
