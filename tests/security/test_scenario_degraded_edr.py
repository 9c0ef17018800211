"""Degraded evidence is never acted on silently (issue 11): the EDR answers 503 during triage and
investigation of a recorded credential theft, read through the real CrowdStrike adapter against
its emulator over loopback, by the real agent activities (a SQLite store, the LangGraph
checkpointer), gated by the packaged policy as the workflow gates them.

- Six 503s (`--fault edr=5xx:6`) are within the read budget: the triage, the proposals, their
  facts, the confidence the policy sees and every policy decision equal the unfaulted run's.
- An EDR that stays down is beyond it: the incident is degraded, every proposal needs approval
  whatever its risk, none targets an entity the unfaulted run does not (the host's owner, whose
  browser downloaded the payload, is not disabled), and the approval card and the triage note
  say "Evidence degraded: <what could not be read>".
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from temporalio.testing import ActivityEnvironment

from agents.models import ProposedAction, TriageResult
from agents.reads import ReadBudget, ReadRetry, RetryingEdr
from orchestrator.activities.agents import AgentActivities
from orchestrator.activities.degraded import Evidence, gate_facts
from orchestrator.composition import open_checkpointer, open_store
from orchestrator.ingest.pipeline import fingerprint
from orchestrator.models import (
    ApprovalRequestInput,
    IncidentRef,
    PlaybookStepInput,
    PlaybookStepResult,
)
from orchestrator.policy.evaluate import DecisionOutcome, PolicyDecision, evaluate
from orchestrator.policy.model import load_policy
from orchestrator.settings import GarrisonSettings
from orchestrator.slack.card import DEGRADED_BLOCK_ID, approval_card
from orchestrator.store.records import IncidentRecord, IncidentStatus
from tests.agents.emulated_edr import HOST_OWNER, EmulatedEdrBackends, emulated_edr, recorded
from tests.agents.fakes import FakeEdr, FakeInventory, FlakyEdr, lab_environment
from tools.actions import TargetKind, action_hash, parse_action

# The packaged budget's attempts (8 per read) with millisecond waits, so the test measures the
# budget's count, not its sleeps (Retry-After and the waits are tests/agents/test_read_budget.py).
FAST = ReadRetry(first_wait_s=0.001, max_wait_s=0.004)
POLICY = load_policy(None)


@dataclass(frozen=True)
class Run:
    triage: TriageResult
    step: PlaybookStepResult
    decisions: list[PolicyDecision]
    failed_reads: int

    @property
    def targets(self) -> set[tuple[str, str]]:
        return {
            (g.proposal.action.kind.value, g.proposal.action.target) for g in self.step.proposals
        }


async def run_agents(tmp_path: Path, **faults: object) -> Run:
    """Triage and the playbook's first round, as the worker runs them, with the EDR faulted from
    the start; then the workflow's policy decision on each proposal."""
    loaded = recorded()
    incident_id = f"degraded--{loaded.spec.id}"
    settings = GarrisonSettings(data_dir=_folder(tmp_path))
    async with AsyncExitStack() as stack:
        world: EmulatedEdrBackends = await stack.enter_async_context(emulated_edr(loaded))
        store = await open_store(settings)
        stack.push_async_callback(store.close)
        checkpointer = await stack.enter_async_context(open_checkpointer(settings))
        await store.ensure_incident(
            IncidentRecord(
                id=incident_id,
                group_key=f"test:{incident_id}",
                title=loaded.spec.title,
                status=IncidentStatus.OPEN,
                opened_at=loaded.spec.alerts[0].time,
            )
        )
        for alert in loaded.spec.alerts:
            await store.add_alert(alert, incident_id, fingerprint(incident_id, "test", alert.uid))
        agents = AgentActivities(store, world, checkpointer, reads=FAST)
        world.fault(**faults)
        env = ActivityEnvironment()
        triage = await env.run(agents.triage, IncidentRef(incident_id=incident_id))
        step = await env.run(
            agents.playbook_step,
            PlaybookStepInput(
                incident_id=incident_id, playbook_id=triage.playbook_id, triage=triage
            ),
        )
        decisions = [
            evaluate(POLICY, g.proposal.action, g.facts, step.confidence) for g in step.proposals
        ]
        return Run(triage, step, decisions, world.failed_reads)


def _folder(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture
async def clean(tmp_path: Path) -> AsyncIterator[Run]:
    yield await run_agents(tmp_path / "clean")


async def test_six_503s_during_triage_change_no_proposal_and_no_decision(
    tmp_path: Path, clean: Run
) -> None:
    faulted = await run_agents(tmp_path / "faulted", fail_5xx=6)
    assert faulted.failed_reads == 6  # the emulator did answer six 503s
    assert not faulted.triage.degraded
    assert faulted.triage == clean.triage
    assert faulted.step == clean.step  # proposals, their facts, verdict, confidence, report
    assert faulted.decisions == clean.decisions
    # the unfaulted response itself: the thief's account (privileged: approval) and the C2
    assert ("disable_account", "pandalab\\pedro.gustavo") in clean.targets
    assert ("block_ip", "10.0.5.13") in clean.targets
    assert all(not g.facts.degraded for g in clean.step.proposals)


async def test_an_edr_down_for_good_degrades_and_nothing_is_allowed_automatically(
    tmp_path: Path, clean: Run
) -> None:
    faulted = await run_agents(tmp_path / "faulted", down=True)
    assert faulted.triage.degraded
    gaps = faulted.triage.evidence_gaps
    assert "process events on PRD01 unavailable (TransientToolError)" in gaps
    assert faulted.step.report is not None and faulted.step.report.degraded
    assert faulted.step.proposals, "a degraded incident still proposes its containment"
    assert faulted.step.confidence <= 0.1
    for gated, decision in zip(faulted.step.proposals, faulted.decisions, strict=True):
        assert gated.facts.degraded
        assert gated.facts.evidence_gaps[0].startswith("process events on PRD01")
        assert decision.outcome is DecisionOutcome.NEEDS_APPROVAL, gated.proposal.action
        assert "evidence degraded: approval required whatever the risk" in decision.reasons
        assert decision.evidence_gaps == gated.facts.evidence_gaps
    assert faulted.targets <= clean.targets
    assert not any(target == HOST_OWNER for _, target in faulted.targets)
    assert HOST_OWNER in faulted.step.report.unconfirmed_identities
    # the ticket's triage note prints the rationale's first lines: the gaps lead it
    assert faulted.triage.rationale[0].startswith("Evidence degraded: process events on PRD01")


async def test_the_approval_card_says_what_could_not_be_read_escaped(tmp_path: Path) -> None:
    faulted = await run_agents(tmp_path, down=True)
    gated, decision = faulted.step.proposals[0], faulted.decisions[0]
    hostile = decision.model_copy(
        update={"evidence_gaps": [*decision.evidence_gaps, "logons on <!channel> unavailable"]}
    )
    card = approval_card(
        _request(gated.proposal.action, hostile, gated.proposal.evidence),
        approvers_needed="1 approver",
        rationale_from_model=False,
    )
    block = next(b for b in card["blocks"] if b.get("block_id") == DEGRADED_BLOCK_ID)
    assert block["text"]["type"] == "plain_text"
    text = block["text"]["text"]
    assert text.startswith("Evidence degraded: process events on PRD01 unavailable")
    assert "&lt;!channel&gt;" in text and "<!channel>" not in text
    assert gated.proposal.evidence[0].startswith("Evidence degraded: ")
    undegraded = approval_card(
        _request(gated.proposal.action, decision.model_copy(update={"evidence_gaps": []}), []),
        approvers_needed="1 approver",
        rationale_from_model=False,
    )
    assert all(b.get("block_id") != DEGRADED_BLOCK_ID for b in undegraded["blocks"])


def _request(action, decision: PolicyDecision, evidence: list[str]) -> ApprovalRequestInput:  # type: ignore[no-untyped-def]
    now = datetime.now(UTC)
    return ApprovalRequestInput(
        approval_id="apr-degraded-1",
        incident_id="degraded--otrf-lsass-comsvcs-prd01",
        action=action,
        action_hash=action_hash("degraded", action, decision.policy_version),
        decision=decision,
        requester="garrison-agent",
        approver_group="soc-primary",
        escalation_group="soc-secondary",
        requested_at=now,
        deadline=now + timedelta(minutes=15),
        expires_at=now + timedelta(minutes=30),
        rationale="credential_access: credentials used or taken",
        evidence=evidence,
    )


async def test_a_process_to_kill_whose_record_cannot_be_read_is_a_gap_for_a_human() -> None:
    """The critical-process deny rule matches the image the EDR records for the pid: when that
    record cannot be read within the budget, the kill is degraded (a human decides), and the
    step goes on rather than failing."""
    edr = FlakyEdr(FakeEdr(), failures=1_000)
    proposal = ProposedAction(action=parse_action("kill_process", "PRD01:628"), rationale="x")
    known = {kind: set() for kind in TargetKind} | {TargetKind.PROCESS: {"prd01:628"}}
    gated = await gate_facts(
        proposal,
        FakeInventory(lab_environment()),
        known,
        RetryingEdr(edr, ReadBudget(FAST)),
        Evidence(),
    )
    assert edr.calls == FAST.attempts
    assert gated.facts.process_image is None
    assert gated.facts.degraded
    assert gated.facts.evidence_gaps == [
        "process record of PRD01:628 unavailable (TransientToolError)"
    ]
    decision = evaluate(POLICY, proposal.action, gated.facts, 0.99)
    assert decision.outcome is DecisionOutcome.NEEDS_APPROVAL
