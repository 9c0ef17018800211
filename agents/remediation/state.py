"""Remediation input and graph state."""

from __future__ import annotations

from typing import TypedDict

from pydantic import BaseModel, ConfigDict

from agents.models import InvestigationReport, ProposedAction, RemediationPlan, TriageResult
from tools.actions import ActionKind


class RemediationInput(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    triage: TriageResult
    report: InvestigationReport
    allowed_kinds: frozenset[ActionKind]


class RemediationState(TypedDict):
    input: RemediationInput
    candidates: list[ProposedAction]
    plan: RemediationPlan
