"""Invariant I6 and the second half of A2 (security-scenarios.md): every vendor state change,
policy decision and human decision of an incident has exactly one entry in the audit chain,
with the AU-3 fields (what, when in UTC, where, the source workflow and activity, the outcome,
who), and the approval and policy decision it rests on. A human decision has two, one of each
type: its receipt by the approval service (`approval.decision_received`) and its count into the
approval by the workflow (`approval.decision.<kind>`).

A recorded incident replayed through the real pipeline (IncidentWorkflow on the Temporal dev
server, the agents, the policy gate, approvals by the simulated analysts through the approval
service) under a policy that asks for two approvers for everything, against twins that journal
every state change they apply. Then three independent records are compared with the audit log:
the twins' journal (what the vendors changed), the workflow's history (the policy decisions it
made) and the store's approvals (the decisions humans gave)."""

from __future__ import annotations

import functools
import json
import uuid
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

import simulations.runner as runner_module
from orchestrator.backends import workflow_id
from orchestrator.composition import open_store
from orchestrator.policy.model import DEFAULT_POLICY_PATH
from orchestrator.settings import GarrisonSettings, TemporalSettings
from orchestrator.store.records import AuditRecord
from simulations.loader import load_all
from simulations.routing import RecordedBackends
from simulations.runner import SimulationOptions, run_simulation
from simulations.spec import AnalystPolicy
from tools.actions import ActionKind
from tools.journal import FileJournal

pytestmark = [pytest.mark.temporal, pytest.mark.simulation]

INCIDENT = Path(__file__).parents[2] / "simulations" / "incidents" / "otrf-lsass-comsvcs-prd01"
TICKET_AUDIT = {"open_ticket": "ticket.opened", "comment": "ticket.commented",
                "close_ticket": "ticket.closed"}  # fmt: skip
DECIDED = "policy decisions carried"
AU3 = ("type", "actor", "target", "outcome", "source")


def strict_policy(path: Path) -> Path:
    """The packaged policy, but every action waits for two approvers."""
    policy = yaml.safe_load(DEFAULT_POLICY_PATH.read_text(encoding="utf-8"))
    policy |= {"version": "i6-two-approvers", "threshold": 0, "two_approver_above": 0}
    path.write_text(yaml.safe_dump(policy, sort_keys=False), encoding="utf-8")
    return path


async def completed_activities(client: Client, incident_id: str) -> Counter[str]:
    """How many activities of each type completed in the incident's workflow (every run), and
    (`DECIDED`) how many of them carried a policy decision to audit: `audit.policy_decision`,
    and an `approvals.request` or `response.execute` whose input holds one
    (`policy-audit-folded-v1`)."""
    history = await client.get_workflow_handle(workflow_id(incident_id)).fetch_history()
    scheduled: dict[int, tuple[str, bool]] = {}
    done: Counter[str] = Counter()
    for event in history.events:
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            attributes = event.activity_task_scheduled_event_attributes
            name = attributes.activity_type.name
            arg = json.loads(attributes.input.payloads[0].data) if attributes.input.payloads else {}
            carries = name == "audit.policy_decision" or bool(arg.get("policy"))
            scheduled[event.event_id] = (name, carries)
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            attributes = event.activity_task_completed_event_attributes
            name, carries = scheduled[attributes.scheduled_event_id]
            done[name] += 1
            done[DECIDED] += carries
    return done


def assert_au3(entry: AuditRecord, incident_id: str) -> None:
    missing = [name for name in AU3 if not getattr(entry, name)]
    assert not missing, (entry.type, missing)
    assert entry.at.utcoffset() == timedelta(0), entry
    assert entry.incident_id == incident_id


async def test_every_change_policy_decision_and_human_decision_has_one_audit_entry(
    temporal_env: WorkflowEnvironment, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    journals = tmp_path / "journal"
    journals.mkdir()
    backends = functools.partial(RecordedBackends, journal_dir=journals)
    monkeypatch.setattr(runner_module, "RecordedBackends", backends)
    settings = GarrisonSettings(
        data_dir=tmp_path / "data",
        policy_file=strict_policy(tmp_path / "policy.yaml"),
        temporal=TemporalSettings(
            address=temporal_env.client.service_client.config.target_host,
            task_queue_prefix=f"i6-{uuid.uuid4().hex[:8]}",
        ),
    )
    loaded = load_all([INCIDENT])
    card = await run_simulation(
        loaded.incidents, settings, SimulationOptions(analyst=AnalystPolicy.APPROVE_ALL)
    )
    assert card.incidents == 1 and card.approvals_requested > 0

    store = await open_store(settings)
    try:
        [incident] = await store.list_incidents()
        entries = await store.audit_entries(incident.id)
        actions = await store.actions_for(incident.id)
        approvals = await store.list_approvals(incident_id=incident.id)
        chain = await store.verify_audit()
    finally:
        await store.close()
    changes = FileJournal(journals / f"{incident.id}.jsonl").changes()
    done = await completed_activities(temporal_env.client, incident.id)
    assert chain.ok, chain.reason
    assert actions and approvals and changes

    # Every state change at a vendor: exactly one entry, of its kind, on its target.
    kinds = {kind.value for kind in ActionKind}
    expected = Counter(
        (f"response.{c.op}.succeeded", c.target.lower()) for c in changes if c.op in kinds
    )
    recorded = Counter(
        (e.type, (e.target or "").lower())
        for e in entries
        if e.type.startswith("response.") and e.type.endswith(".succeeded")
    )
    assert recorded == expected
    assert Counter(TICKET_AUDIT[c.op] for c in changes if c.op in TICKET_AUDIT) == Counter(
        e.type for e in entries if e.type in TICKET_AUDIT.values()
    )
    assert {c.op for c in changes} <= kinds | set(TICKET_AUDIT), "a change nobody maps"

    # Every policy decision the workflow made: exactly one entry.
    policy_entries = [e for e in entries if e.type.startswith("policy.") and e.actor == "policy"]
    assert len(policy_entries) == done[DECIDED] > 0
    decided = Counter((e.target or "").lower() for e in policy_entries)
    for action in actions:
        assert decided[f"{action.kind.value}:{action.target}".lower()] >= 1, action.business_key

    # Every human decision: exactly one receipt, by that human, on that approval ...
    given = Counter((a.id, d.user) for a in approvals for d in a.decisions)
    received = Counter(
        (e.approval_ref, e.actor) for e in entries if e.type == "approval.decision_received"
    )
    assert received == given and sum(given.values()) >= 2 * len(approvals)
    # ... and one more when the workflow counts it into the approval (`approvals.finalize`).
    counted = Counter(
        (e.approval_ref, e.actor) for e in entries if e.type.startswith("approval.decision.")
    )
    assert counted == given

    # AU-3 on all of them; an executed action names its approval and its policy decision.
    for entry in entries:
        assert_au3(entry, incident.id)
    by_target = {
        (e.type, (e.target or "").lower()): e for e in entries if e.type.startswith("response.")
    }
    for action in actions:
        entry = by_target[(f"response.{action.kind.value}.succeeded", action.target.lower())]
        assert entry.approval_ref == action.approval_id is not None
        assert entry.policy_decision_id and entry.policy_decision_id.startswith("i6-two-approvers")
        assert entry.source.startswith(workflow_id(incident.id) + "/response.execute#")
