"""Triage graph state and the per-alert assessment it accumulates."""

from __future__ import annotations

from typing import TypedDict

from pydantic import BaseModel, ConfigDict, Field

from agents.models import EvidenceRef, ExtractedEntities, TriageInput, TriageResult
from agents.triage.reputation import IntelFinding
from tools.models import Environment


class AlertAssessment(BaseModel):
    model_config = ConfigDict(frozen=True)

    uid: str
    rule: str
    host: str | None
    score: float
    stage_weight: float = 0.0  # severity + technique: how strongly it names its kill-chain stage
    noisy: bool
    maintenance: bool = False  # proven the platform's own (`maintenance.py`): counts nothing
    tactics: list[str] = Field(default_factory=list)
    techniques: list[str] = Field(default_factory=list)
    reasons: list[str] = Field(default_factory=list)


class TriageState(TypedDict):
    input: TriageInput
    environment: Environment
    entities: ExtractedEntities
    assessments: list[AlertAssessment]
    corroboration: list[str]
    corroboration_score: float
    stages: dict[str, float]  # kill-chain stages seen in telemetry (tactic -> weight)
    lineage: list[str]  # alerting processes an implant started (stages.implant_lineage)
    gaps: list[str]  # telemetry that could not be read within the retry budget
    operators: str | None  # why the incident is the declared operators' work (operators.py)
    intel: list[IntelFinding]  # what threat intelligence says of its indicators (reputation.py)
    intel_notes: list[str]  # lookups that failed
    claim_refs: dict[str, list[EvidenceRef]]  # a corroboration line's records (agents/evidence.py)
    result: TriageResult
