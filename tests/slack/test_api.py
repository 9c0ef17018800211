"""The HTTP API beside Slack: bearer tokens, reads, and decisions with the same checks."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from orchestrator.store.records import ApprovalStatus
from tests.slack.stack import TOKENS, pending, slack_stack, until

pytestmark = pytest.mark.temporal


def bearer(name: str) -> dict[str, str]:
    return {"authorization": f"Bearer {TOKENS[name]}"}


async def test_api_reads_and_decides_with_the_same_checks_as_slack(
    temporal_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    async with slack_stack(temporal_env, tmp_path) as stack:
        http = stack.http
        assert (await http.get("/healthz")).json() == {"status": "ok"}
        paths = (await http.get("/openapi.json")).json()["paths"]
        assert {"/slack/interactions", "/api/approvals/{approval_id}/decision"} <= set(paths)

        incident_id, handle = await stack.start()
        request = await pending(handle, stack.store)
        url = f"/api/approvals/{request.approval_id}/decision"
        good = {"decision": "approve", "action_hash": request.action_hash}

        for headers in ({}, {"authorization": "Bearer nope"}, {"authorization": "Basic eA=="}):
            assert (await http.get("/api/approvals", headers=headers)).status_code == 401
            assert (await http.post(url, json=good, headers=headers)).status_code == 401

        # the workflow shows a request a moment before its record is stored (and listed)
        deadline = asyncio.get_running_loop().time() + 30
        while True:
            listed = (await http.get("/api/approvals", headers=bearer("alice"))).json()
            ids = [a["id"] for a in listed]
            if request.approval_id in ids or asyncio.get_running_loop().time() > deadline:
                break
            await asyncio.sleep(0.1)
        assert request.approval_id in ids
        shown = (await http.get(f"/api/incidents/{incident_id}", headers=bearer("alice"))).json()
        assert shown["incident"]["id"] == incident_id and shown["alerts"]
        assert (await http.get("/api/incidents/nope", headers=bearer("alice"))).status_code == 404
        missing = await http.post(
            "/api/approvals/apr-0000000000000000/decision", json=good, headers=bearer("alice")
        )
        assert missing.status_code == 404
        malformed = await http.post(
            "/api/approvals/apr-nope/decision", json=good, headers=bearer("alice")
        )
        assert malformed.status_code == 422 and "approval_id" in malformed.text

        bad = await http.post(url, json={"decision": "maybe"}, headers=bearer("alice"))
        assert bad.status_code == 422
        assert {p["field"] for p in bad.json()["detail"]} >= {"body.decision", "body.action_hash"}

        # S6: a decision bound to another version of the action is refused and audited.
        changed = await http.post(
            url, json={**good, "action_hash": "0" * 64}, headers=bearer("alice")
        )
        assert changed.status_code == 409 and "changed" in changed.json()["detail"]

        approved = await http.post(url, json=good, headers=bearer("alice"))
        assert approved.status_code == 200, approved.text
        assert approved.json()["status"] == "approved"
        again = await http.post(url, json=good, headers=bearer("bob"))
        assert again.status_code == 409

        async def executed() -> bool | None:
            ledger = [e.action for e in await stack.store.actions_for(incident_id)]
            return True if request.action in ledger else None

        await until(executed, what="the approved action to run")
        record = await stack.store.get_approval(request.approval_id)
        assert record is not None and record.status is ApprovalStatus.APPROVED
        assert [(d.user, d.channel) for d in record.decisions] == [("alice", "api")]
        audit = [(e.type, e.actor, e.source) for e in await stack.store.audit_entries()]
        assert ("approval.decision_refused", "alice", "channel:api") in audit
        assert ("approval.decision_received", "alice", "channel:api") in audit
        await handle.terminate("test done")
