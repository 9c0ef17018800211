"""What the agents read and produce: the typed results of triage, investigation and remediation,
and the proposal/outcome pair that passes between a playbook and the workflow that gates it."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from tools.actions import Action
from tools.models import Alert, Category, LongText, Severity, ShortText, Verdict


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ExtractedEntities(_Model):
    """Entities extracted deterministically from alerts and telemetry: the only action targets."""

    hosts: list[ShortText] = Field(default_factory=list)
    users: list[ShortText] = Field(default_factory=list)
    ips: list[ShortText] = Field(default_factory=list)
    domains: list[ShortText] = Field(default_factory=list)
    sha256: list[ShortText] = Field(default_factory=list)
    processes: list[ShortText] = Field(default_factory=list)  # "<asset id>:<pid>"
    files: list[ShortText] = Field(default_factory=list)  # "<asset id>:<sha256 or path>"


class EvidenceRef(_Model):
    """One telemetry record a claim rests on: the host it was read on (as the read named it),
    its time, the process (pid, and the vendor's process guid or the alert's uid as
    `record_id` where there is one) and the kind of record (`alert`, `process`, `connection`,
    `logon`, `registry`, `file`, `system`, `account`). The records themselves are kept per
    incident by the activity that read them (`orchestrator/activities/evidence.py`)."""

    host: ShortText
    time: datetime
    source: ShortText
    pid: int | None = None
    record_id: ShortText | None = None


class Claim(_Model):
    """A rationale line and the records it rests on (none: a total, a count, a model's word)."""

    text: ShortText
    refs: list[EvidenceRef] = Field(default_factory=list)


class TriageInput(_Model):
    incident_id: ShortText
    alerts: list[Alert]


class TriageResult(_Model):
    verdict: Verdict
    confidence: float = Field(ge=0.0, le=1.0)
    severity: Severity
    category: Category
    techniques: list[ShortText] = Field(default_factory=list)
    entities: ExtractedEntities = Field(default_factory=ExtractedEntities)
    # The playbook the orchestrator routed this triage to (`playbooks/routing.yaml`), set by the
    # triage activity: the agent returns a category, never a playbook; empty until routed.
    playbook_id: ShortText = ""
    rationale: list[ShortText] = Field(default_factory=list)
    model_used: bool = False
    # Telemetry that could not be read within the retry budget (`agents/reads.py`): the verdict
    # and category rest on less than they should, so every containment needs a human.
    degraded: bool = False
    evidence_gaps: list[ShortText] = Field(default_factory=list)
    # The version of the analyst knowledge (`agents/knowledge_base/manifest.yaml`, or a team's
    # own folder) the verdict and category were decided under; none in histories from before it.
    knowledge_version: ShortText | None = None
    # The rationale's lines that rest on records, with those records (`EvidenceRef`); the
    # `rationale` above stays the text of record. None in histories from before them.
    claims: list[Claim] = Field(default_factory=list)


class Finding(_Model):
    summary: ShortText
    evidence: list[ShortText] = Field(default_factory=list)
    refs: list[EvidenceRef] = Field(default_factory=list)  # the records it rests on


class InvestigationInput(_Model):
    incident_id: ShortText
    alerts: list[Alert]
    triage: TriageResult


class ModelToolCall(_Model):
    """One tool call of the investigation's model (`agents/investigation/model_loop.py`), kept in
    the incident's evidence. Model-generated: the question is the model's; the answer is what
    Garrison read (truncated), or why the call was refused."""

    step: int = Field(ge=0)
    tool: ShortText
    arguments: ShortText = ""  # as the model sent them, JSON, truncated
    outcome: Literal["answered", "refused", "failed"]
    result: LongText = ""
    generated_by: Literal["model"] = "model"


class InvestigationReport(_Model):
    verdict: Verdict
    confidence: float = Field(ge=0.0, le=1.0)
    corroborated: bool
    findings: list[Finding] = Field(default_factory=list)
    compromised_assets: list[ShortText] = Field(default_factory=list)
    compromised_identities: list[ShortText] = Field(default_factory=list)
    attacker_ips: list[ShortText] = Field(default_factory=list)
    attacker_domains: list[ShortText] = Field(default_factory=list)
    malicious_sha256: list[ShortText] = Field(default_factory=list)
    malicious_processes: list[ShortText] = Field(default_factory=list)  # "<asset id>:<pid>"
    # domain controllers whose alerts only record requests they served (a DCSync, a ticket):
    # targets of the attack, not hosts to isolate
    served_assets: list[ShortText] = Field(default_factory=list)
    # Telemetry that could not be read within the retry budget, as in `TriageResult`.
    degraded: bool = False
    evidence_gaps: list[ShortText] = Field(default_factory=list)
    # Accounts and processes named only by alerts whose process records could not be read: the
    # records that would tell the attacker's process from the victim's tool are missing, so
    # they are reported, never contained on a guess. Accounts that no directory holds (or that
    # no domain qualifies) are listed too: there is nothing to disable.
    unconfirmed_identities: list[ShortText] = Field(default_factory=list)
    unconfirmed_processes: list[ShortText] = Field(default_factory=list)  # "<asset id>:<pid>"
    # The category the investigation's proven findings decide (`agents/verdict_category.py`):
    # triage's category is the proposal, from the alert mix; this one drives the response. None
    # when the investigation did not decide (a report recorded before it did).
    category: Category | None = None
    category_reason: ShortText = ""
    # With an investigation model only, all of it model-generated (`model_loop.py`): every tool
    # call and its answer; the findings and entities it concluded that passed the evidence
    # checks (added beside the rules' lists, never in their place); where it disagreed.
    model_tool_calls: list[ModelToolCall] = Field(default_factory=list)
    model_findings: list[Finding] = Field(default_factory=list)
    model_entities: ExtractedEntities = Field(default_factory=ExtractedEntities)
    model_disagreements: list[ShortText] = Field(default_factory=list)


class ProposedAction(_Model):
    action: Action
    rationale: ShortText
    evidence: list[ShortText] = Field(default_factory=list)
    from_model: bool = False  # a language model chose it: humans see it labelled unverified


class RejectedChoice(_Model):
    """A model's suggestion that never became a proposal (not an allowed kind on an extracted
    entity). Kept so that the orchestrator audits every refused attempt as a policy deny."""

    kind: ShortText
    target: ShortText
    reason: ShortText


class RemediationPlan(_Model):
    proposals: list[ProposedAction] = Field(default_factory=list)
    rejected: list[RejectedChoice] = Field(default_factory=list)


class OutcomeStatus(StrEnum):
    EXECUTED = "executed"
    ALREADY_IN_STATE = "already_in_state"
    DENIED = "denied"
    EXPIRED = "expired"
    FAILED = "failed"
    REJECTED = "rejected"  # outside the playbook's allowed kinds or not an extracted entity


class ActionOutcome(_Model):
    """What the workflow tells a paused playbook about one of its proposals."""

    action: Action
    status: OutcomeStatus
    risk: int | None = None
    detail: ShortText = ""
