"""Remediation input and graph state."""

from __future__ import annotations

from typing import TypedDict

from pydantic import BaseModel, ConfigDict, Field

from agents.models import InvestigationReport, ProposedAction, RemediationPlan, TriageResult
from tools.actions import ActionKind
from tools.models import Alert


class RemediationInput(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    triage: TriageResult
    report: InvestigationReport
    allowed_kinds: frozenset[ActionKind]
    # the incident's alerts: where exploited CVEs are named (`agents/remediation/patching.py`)
    alerts: list[Alert] = Field(default_factory=list)


class RemediationState(TypedDict):
    input: RemediationInput
    candidates: list[ProposedAction]
    plan: RemediationPlan
