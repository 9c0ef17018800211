"""The audit of an agent activity's model use: one `agent.model` record per activity that asked
the model anything, with the incident's usage so far (calls, tokens, cost, latency), what the seam
refused or skipped (an answer too large, a tool it was not given, a spent budget: the agents then
kept their deterministic answer), and where the model disagreed with the rules. The usage itself is
kept in the store per incident and role (`save_usage`, after every agent activity), and every
agent activity starts from it (`restore_usage`), whichever worker runs it."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from agents.deps import AgentDeps
from agents.model_client import AgentModels, ModelClient, RoleUsage
from agents.models import InvestigationReport, ProposedAction, RejectedChoice, TriageResult
from agents.seam import truncate
from orchestrator.activities.errors import activity_source
from orchestrator.store.model_use import ModelUsageRecord
from orchestrator.store.records import AuditEvent
from orchestrator.store.repository import Store

DISAGREES = "model disagrees"


def triage_disagreements(result: TriageResult) -> list[str]:
    """The triage rationale's notes of a model verdict other than the rules' (kept: the rules')."""
    return [f"triage: {line}" for line in result.rationale if line.startswith(DISAGREES)]


def remediation_disagreements(
    proposals: Sequence[ProposedAction], rejected: Sequence[RejectedChoice] = ()
) -> list[str]:
    """Actions the model added to the rules' plan (each still passes the policy), and those it
    chose that were refused before the gate (not an allowed kind on an extracted entity)."""
    added = [
        f"remediation: model added {p.action.kind.value} {p.action.target}"
        for p in proposals
        if p.from_model
    ]
    return added + [f"remediation: model chose {r.kind} {r.target}, refused" for r in rejected]


def investigation_disagreements(report: InvestigationReport | None) -> list[str]:
    """The investigation model's verdict where it is not the rules' (kept: the rules'), and the
    entities it added from the evidence."""
    if report is None:
        return []
    added = report.model_entities
    names = [*added.hosts, *added.users, *added.ips, *added.domains, *added.sha256]
    extra = [f"investigation: model added {truncate(', '.join(names), 300)}"] if names else []
    return [*report.model_disagreements, *extra]


def step_client(deps: AgentDeps) -> object:
    """A playbook step's model for the audit: its remediation and investigation models keep one
    ledger, so either's will do (the investigation's alone when only that role has a model)."""
    return deps.model if isinstance(deps.model, ModelClient) else deps.investigator


async def audit_model_use(
    store: Store, incident_id: str, client: object, disagreements: list[str]
) -> None:
    """`client`: the model the activity's agent was given (a `ModelClient`, or none)."""
    if not isinstance(client, ModelClient):
        return
    ledger = client.ledger
    events = ledger.take_events()
    new = [d for d in disagreements if d not in ledger.disagreements]
    ledger.disagreements.extend(new)
    if not events and not new and ledger.calls == 0:
        return
    await store.append_audit(
        AuditEvent(
            type="agent.model",
            actor="garrison-agent",
            incident_id=incident_id,
            target=client.role,
            outcome="deterministic-fallback" if ledger.budget_exceeded else "consulted",
            source=activity_source(),
            detail={
                "model": client.name,
                **{k: v for k, v in ledger.summary().items() if isinstance(v, int | float | bool)},
                "events": "\n".join(events)[:4_000],
                "disagreements": "\n".join(new)[:4_000],
            },
        )
    )


async def restore_usage(store: Store, models: AgentModels, incident_id: str) -> None:
    """Before an agent activity: the incident's ledger brought up to what the store kept, role by
    role (the larger count wins). A restarted worker, or one that last saw the incident before
    another worker asked more of the model for it, keeps counting from there, so the budgets
    and the figures hold across workers. The incident's agent activities run one at a time."""
    rows = await store.model_use.usage_of(incident_id)
    if not rows:
        return
    ledger = models.ledger(incident_id)
    merged = {role: RoleUsage(**vars(usage)) for role, usage in ledger.roles.items()}
    for row in rows:
        if row.calls >= merged.get(row.role, RoleUsage()).calls:
            merged[row.role] = RoleUsage(
                calls=row.calls,
                answered=row.answered,
                input_tokens=row.input_tokens,
                output_tokens=row.output_tokens,
                cost_usd=row.cost_usd,
                latency_s=row.latency_s,
            )
    exceeded = ledger.budget_exceeded or any(row.budget_exceeded for row in rows)
    ledger.restore(merged, budget_exceeded=exceeded)
    stored = [line for row in rows for line in row.disagreements]
    ledger.disagreements = list(dict.fromkeys([*ledger.disagreements, *stored]))


async def save_usage(store: Store, models: AgentModels, incident_id: str) -> None:
    """The incident's ledger, one row per role that called the model (absolute values: a
    retried activity writes the same rows)."""
    ledger = models.ledger(incident_id)
    now = datetime.now(UTC)
    await store.model_use.save_usage(
        ModelUsageRecord(
            incident_id=incident_id,
            role=role,
            model=models.names.get(role, "model"),
            calls=usage.calls,
            answered=usage.answered,
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            cost_usd=round(usage.cost_usd, 6),
            latency_s=round(usage.latency_s, 3),
            budget_exceeded=ledger.budget_exceeded,
            disagreements=[d for d in ledger.disagreements if d.startswith(f"{role}:")],
            updated_at=now,
        )
        for role, usage in ledger.roles.items()
        if usage.calls
    )
