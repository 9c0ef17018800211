"""Decisions cannot be forged through Temporal, and one human is one approver, on a real stack:
a real Temporal dev server, real workers, the real store, `garrison server`'s app over loopback.

A script that reaches the Temporal frontend sends the `decide` Update and the `decide_signal`
signal itself, as invented people with the approver group they chose: nothing executes, and each
is audited as forged. Alice deciding as " Alice" from the CLI and again through the API counts
once; the critical action runs only when Bob, a second human, approves.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.testing import WorkflowEnvironment

from orchestrator.models import DecisionInput, DecisionKind
from orchestrator.store.records import ApprovalStatus
from orchestrator.temporal.converter import DATA_CONVERTER
from tests.slack.stack import TOKENS, pending, slack_stack, strict_policy, until

pytestmark = pytest.mark.temporal


def bearer(name: str) -> dict[str, str]:
    return {"authorization": f"Bearer {TOKENS[name]}"}


async def test_forged_decisions_execute_nothing_and_one_human_counts_once(
    temporal_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    async with slack_stack(temporal_env, tmp_path, strict_policy(two_approvers=True)) as stack:
        incident_id, handle = await stack.start()
        request = await pending(handle, stack.store)
        assert request.required_approvers == 2
        approval_id = request.approval_id

        # The forger: its own connection to the frontend, its own identities and groups.
        forger = await Client.connect(
            stack.env.client.service_client.config.target_host,
            data_converter=DATA_CONVERTER,
        )
        target = forger.get_workflow_handle(handle.id)

        def forged(user: str) -> DecisionInput:
            return DecisionInput(
                decision_id=str(uuid.uuid4()),
                approval_id=approval_id,
                action_hash=request.action_hash,
                user=user,
                groups=["soc-primary", "soc-secondary"],
                decision=DecisionKind.APPROVE,
                channel="slack",
            )

        for invented in ("mallory", "eve"):
            with pytest.raises(WorkflowUpdateFailedError) as refused:
                await target.execute_update("decide", forged(invented))
            assert "forged" in str(refused.value.cause)
        await target.signal("decide_signal", forged("trent"))

        async def forged_entries() -> list[str] | None:
            entries = await stack.store.audit_entries(incident_id)
            actors = [e.actor for e in entries if e.type == "approval.decision_forged"]
            return actors if len(actors) == 3 else None

        assert sorted(await until(forged_entries, what="three forged decisions audited")) == [
            "eve",
            "mallory",
            "trent",
        ]
        stored = await stack.store.get_approval(approval_id)
        assert stored is not None and stored.status is ApprovalStatus.PENDING
        assert await stack.store.actions_for(incident_id) == []

        # Alice from the CLI with a stray space and a capital, then from the API: one human.
        first = await stack.deps.approvals.decide(
            approval_id, " Alice", DecisionKind.APPROVE, "cli", shown_hash=request.action_hash
        )
        assert first.accepted and first.message == "recorded", first.message
        url = f"/api/approvals/{approval_id}/decision"
        body = {"decision": "approve", "action_hash": request.action_hash}
        again = await stack.http.post(url, json=body, headers=bearer("alice"))
        assert again.status_code == 409 and "already decided" in again.text, again.text
        assert await stack.store.actions_for(incident_id) == []

        second = await stack.http.post(url, json=body, headers=bearer("bob"))
        assert second.status_code == 200 and second.json()["status"] == "approved", second.text

        async def executed() -> int | None:
            records = await stack.store.actions_for(incident_id)
            return len(records) if records else None

        assert await until(executed, what="the approved action to run") == 1
        record = await stack.store.get_approval(approval_id)
        assert record is not None and record.status is ApprovalStatus.APPROVED
        assert sorted(d.user for d in record.decisions) == ["alice", "bob"]
        received = [
            e.actor
            for e in await stack.store.audit_entries(incident_id)
            if e.type == "approval.decision_received"
        ]
        assert "mallory" not in received and "eve" not in received
        await handle.terminate("test done")
