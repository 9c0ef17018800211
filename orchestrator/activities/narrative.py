"""The summaries role inside the playbook step: after a step's proposals are gated, the model
writes the incident's narrative and a justification per proposed action (`agents/narrative.py`),
and the store keeps it for the ticket, the Slack card and the console, which show it labelled
beside the deterministic facts.

It runs in the activity, never in the workflow, and through the seam: its recording and replay,
its timeouts, attempts and per-incident budgets. A step asks only when it has something new to
justify or is the last one. Any failure leaves no new narrative (an earlier one stays, labelled
with its time) and is audited as `agent.narrative` with outcome `failed`; the step's result, and
so the deterministic path, never depends on it."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from agents.model_client import ModelClient
from agents.models import ActionOutcome, InvestigationReport, TriageResult
from agents.narrative import (
    LABEL,
    MAX_JUSTIFIED,
    ActionFacts,
    Narrative,
    NarrativeFacts,
    write_narrative,
)
from orchestrator.activities.errors import activity_source
from orchestrator.models import GatedProposal
from orchestrator.store.model_use import ActionNarrative, NarrativeRecord
from orchestrator.store.records import AuditEvent
from orchestrator.store.repository import Store
from orchestrator.text import defang
from tools.models import Verdict

AUDIT_TYPE = "agent.narrative"
TICKET_MAX = 8_000  # characters of narrative on the ticket (a comment holds 16 384)


def narrative_facts(
    triage: TriageResult,
    verdict: Verdict,
    confidence: float,
    report: InvestigationReport | None,
    proposals: Sequence[GatedProposal],
    outcomes: Sequence[ActionOutcome] = (),
) -> NarrativeFacts:
    """What the model is shown: deterministic facts only, and nothing run-specific (no incident
    id, no time), so that a recording replays."""
    actions = [
        ActionFacts(
            id=f"A{index}",
            kind=gated.proposal.action.kind.value,
            target=gated.proposal.action.target,
            rules_rationale=gated.proposal.rationale,
            risk_factors=gated.facts.model_dump(mode="json", exclude_none=True),
            from_model=gated.proposal.from_model,
        )
        for index, gated in enumerate(proposals[:MAX_JUSTIFIED], start=1)
    ]
    findings = [f.summary for f in report.findings] if report is not None else []
    return NarrativeFacts(
        verdict=verdict.value,
        confidence=round(confidence, 2),
        category=(
            report.category if report is not None and report.category else triage.category
        ).value,
        severity=triage.severity.value,
        techniques=list(triage.techniques),
        findings=findings,
        rules_reasons=list(triage.rationale),
        actions=actions,
        outcomes=[f"{o.action.kind.value} {o.action.target}: {o.status.value}" for o in outcomes],
        evidence_gaps=list(triage.evidence_gaps),
    )


async def narrate(
    store: Store, client: ModelClient, incident_id: str, facts: NarrativeFacts
) -> NarrativeRecord | None:
    """Ask for the narrative of `facts`, keep it (merged with earlier steps' justifications) and
    audit the outcome; None, and an audited failure, when the model gave no usable answer."""
    events_before = len(client.ledger.events)
    try:
        written = await write_narrative(client, facts)
    except Exception as error:  # a narrative is never worth failing the step over
        written = None
        client.ledger.events.append(f"narrative: {type(error).__name__}")
    if written is None:
        why = "; ".join(client.ledger.events[events_before:]) or "no usable answer"
        await _audit(store, incident_id, client.name, "failed", why)
        return None
    record = _merged(incident_id, facts, written, await store.model_use.narrative_of(incident_id))
    await store.model_use.save_narrative(record)
    await _audit(store, incident_id, client.name, "written", f"{len(record.text)} characters")
    return record


def _merged(
    incident_id: str, facts: NarrativeFacts, written: Narrative, earlier: NarrativeRecord | None
) -> NarrativeRecord:
    """This step's justifications, and the earlier steps' for actions this step did not propose."""
    ids = {action.id: action for action in facts.actions}
    new = [
        ActionNarrative(kind=ids[key].kind, target=ids[key].target, text=text)
        for key, text in written.justifications.items()
    ]
    fresh = {(j.kind, j.target) for j in new}
    kept = [
        j for j in (earlier.justifications if earlier else []) if (j.kind, j.target) not in fresh
    ]
    return NarrativeRecord(
        incident_id=incident_id,
        model=written.model,
        text=written.text,
        justifications=kept + new,
        written_at=datetime.now(UTC),
    )


async def narrative_failed(store: Store, incident_id: str, model: str, why: str) -> None:
    await _audit(store, incident_id, model, "failed", why)


async def _audit(store: Store, incident_id: str, model: str, outcome: str, detail: str) -> None:
    await store.append_audit(
        AuditEvent(
            type=AUDIT_TYPE,
            actor="garrison-agent",
            incident_id=incident_id,
            target="summaries",
            outcome=outcome,
            source=activity_source(),
            detail={"model": model, "detail": detail[:1_000]},
        )
    )


def ticket_text(record: NarrativeRecord | None) -> str:
    """The narrative under the ticket's deterministic closing note: labelled, defanged (no link,
    mention or markup survives), after the facts it never replaces. Empty without one."""
    if record is None:
        return ""
    lines = [
        "",
        f"--- {LABEL}: narrative by {defang(record.model)} (the facts above stand) ---",
        defang(record.text),
    ]
    if record.justifications:
        lines.append(f"--- {LABEL}: why each action ---")
        lines += [f"- {j.kind} {defang(j.target)}: {defang(j.text)}" for j in record.justifications]
    text = "\n".join(lines)
    return text if len(text) <= TICKET_MAX else text[: TICKET_MAX - 20] + "\n...[cut]"
