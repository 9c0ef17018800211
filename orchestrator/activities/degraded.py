"""Degraded evidence at the policy gate: a playbook step whose triage or investigation could not
read some telemetry within the retry budget (`agents/reads.py`) hands the workflow proposals whose
facts say so (`TargetFacts.degraded`, with what could not be read) and a verdict confidence capped
at `DEGRADED_CONFIDENCE`. `evaluate` turns the fact into an approval whatever the risk and the
deployment's weights, and the approval card shows the gaps: nothing is contained automatically on
evidence Garrison knows to be incomplete."""

from __future__ import annotations

from dataclasses import dataclass

from agents.degraded import DEGRADED_CONFIDENCE, gaps_of
from agents.models import InvestigationReport, ProposedAction, TriageResult
from orchestrator.activities.facts import target_facts
from orchestrator.models import GatedProposal
from tools.actions import TargetKind
from tools.edr.base import EdrReader
from tools.errors import ToolError
from tools.inventory.base import InventoryReader


@dataclass(frozen=True)
class Evidence:
    """What an incident's agents could not read, so far."""

    gaps: tuple[str, ...] = ()

    @classmethod
    def of(cls, triage: TriageResult, report: InvestigationReport | None) -> Evidence:
        later = report.evidence_gaps if report is not None else []
        return cls(tuple(gaps_of(triage.evidence_gaps, later)))

    @property
    def degraded(self) -> bool:
        return bool(self.gaps)

    def confidence(self, confidence: float) -> float:
        """The verdict confidence the policy sees."""
        return min(confidence, DEGRADED_CONFIDENCE) if self.degraded else confidence


async def gate_facts(
    proposal: ProposedAction,
    inventory: InventoryReader,
    known: dict[TargetKind, set[str]],
    edr: EdrReader,
    evidence: Evidence,
) -> GatedProposal:
    """The proposal with the facts the policy scores it on. The EDR's record of a process to
    kill that cannot be read (after the reader's retries) is one more gap, not a failed step:
    without the image the critical-process rule cannot match, so a human decides."""
    action = proposal.action
    gaps = list(evidence.gaps)
    try:
        facts = await target_facts(action, inventory, known, edr)
    except ToolError as error:
        if action.target_kind is not TargetKind.PROCESS:
            raise
        facts = await target_facts(action, inventory, known, None)
        gaps = gaps_of(
            gaps, [f"process record of {action.target} unavailable ({type(error).__name__})"]
        )
    if gaps:
        facts = facts.model_copy(update={"degraded": True, "evidence_gaps": gaps[:10]})
    return GatedProposal(proposal=proposal, facts=facts)
