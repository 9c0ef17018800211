"""The audit of an agent activity's model use: one `agent.model` record per activity that asked
the model anything, with the incident's usage so far (calls, tokens, cost, latency), what the seam
refused or skipped (an answer too large, a tool it was not given, a spent budget: the agents then
kept their deterministic answer), and where the model disagreed with the rules."""

from __future__ import annotations

from collections.abc import Sequence

from agents.deps import AgentDeps
from agents.model_client import ModelClient
from agents.models import InvestigationReport, ProposedAction, RejectedChoice, TriageResult
from agents.seam import truncate
from orchestrator.activities.errors import activity_source
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


async def audit_model_use(
    store: Store, incident_id: str, deps: AgentDeps, disagreements: list[str]
) -> None:
    # a playbook step's remediation and investigation models keep one ledger: either's will do
    client = deps.model if isinstance(deps.model, ModelClient) else deps.investigator
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
