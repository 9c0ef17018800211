"""Nodes that most playbooks share: investigate, contain through the remediation agent, and
summarise. Authors may reuse them or write their own."""

from __future__ import annotations

from typing import Any

from agents.degraded import degraded_line
from agents.investigation.graph import run_investigation
from agents.models import ActionOutcome, InvestigationInput, InvestigationReport, OutcomeStatus
from agents.remediation.graph import run_remediation
from playbooks.base import PlaybookDeps, PlaybookState, propose


async def investigate(deps: PlaybookDeps, state: PlaybookState) -> dict[str, Any]:
    report = await run_investigation(
        deps.agents,
        InvestigationInput(
            incident_id=state["incident_id"], alerts=state["alerts"], triage=state["triage"]
        ),
    )
    return {"report": report}


async def contain(deps: PlaybookDeps, state: PlaybookState) -> dict[str, Any]:
    report = state.get("report")
    assert report is not None
    plan = await run_remediation(
        deps.agents, state["triage"], report, deps.playbook.allowed_actions, state["alerts"]
    )
    return {"outcomes": propose(deps, plan.proposals), "rejected": plan.rejected}


def done(outcomes: list[ActionOutcome]) -> list[ActionOutcome]:
    ok = (OutcomeStatus.EXECUTED, OutcomeStatus.ALREADY_IN_STATE)
    return [o for o in outcomes if o.status in ok]


def summary_lines(report: InvestigationReport | None, outcomes: list[ActionOutcome]) -> list[str]:
    lines: list[str] = []
    if report is not None:
        lines.append(
            f"verdict {report.verdict.value} ({report.confidence:.2f}), "
            f"corroborated={report.corroborated}"
        )
        if report.category is not None:
            # the category the evidence decided, and why (triage's was the proposal)
            lines.append(f"category {report.category.value}: {report.category_reason}")
        if report.degraded:
            lines.append(degraded_line(report.evidence_gaps))
        if report.compromised_assets:
            lines.append("compromised assets: " + ", ".join(report.compromised_assets))
        if report.compromised_identities:
            lines.append("compromised identities: " + ", ".join(report.compromised_identities))
        if report.attacker_ips or report.attacker_domains:
            lines.append(
                "attacker endpoints: " + ", ".join(report.attacker_ips + report.attacker_domains)
            )
    for outcome in outcomes:
        lines.append(f"{outcome.action.kind.value} {outcome.action.target}: {outcome.status.value}")
    return lines
