"""Agent activities: triage, and one round of a playbook graph. Each runs a whole LangGraph graph
inside one activity, with read-only tools only; the playbook's checkpoints live in the database,
keyed by incident (a follow-up pass after a re-triage has its own thread), so any worker can
resume it.

Vendor reads are retried inside the graphs (`agents/reads.py`); what still could not be read
makes the incident degraded, and a degraded step's proposals reach the policy gate with the
`degraded` fact and a capped confidence (`degraded.py`): every containment then needs a human."""

from __future__ import annotations

from dataclasses import replace

from langchain_core.language_models import BaseChatModel
from langgraph.checkpoint.base import BaseCheckpointSaver
from temporalio import activity

from agents.deps import AgentDeps
from agents.model_client import AgentModels, Role
from agents.models import RejectedChoice, TriageInput, TriageResult
from agents.reads import ReadRetry, retrying_edr
from agents.triage.graph import run_triage
from orchestrator.activities.degraded import Evidence, gate_facts
from orchestrator.activities.errors import activity_source
from orchestrator.activities.evidence import (
    RecordingEdr,
    audit_investigation,
    claims_json,
    keep_evidence,
)
from orchestrator.activities.facts import known_targets
from orchestrator.activities.model_use import (
    audit_model_use,
    investigation_disagreements,
    remediation_disagreements,
    restore_usage,
    save_usage,
    step_client,
    triage_disagreements,
)
from orchestrator.activities.narrative import narrate, narrative_facts, narrative_failed
from orchestrator.activities.routing import route_triage
from orchestrator.backends import Backends
from orchestrator.models import IncidentRef, PlaybookStepInput, PlaybookStepResult
from orchestrator.observability.tracing import agent_node_spans
from orchestrator.store.records import AuditEvent
from orchestrator.store.repository import Store
from playbooks.engine import PlaybookStart, step_playbook
from playbooks.registry import get_playbook


class AgentActivities:
    def __init__(
        self,
        store: Store,
        backends: Backends,
        checkpointer: BaseCheckpointSaver,
        model: AgentModels | BaseChatModel | None = None,
        reads: ReadRetry | None = None,
    ) -> None:
        self.store = store
        self.backends = backends
        self.checkpointer = checkpointer
        self.models = AgentModels.single(model) if isinstance(model, BaseChatModel) else model
        self.reads = reads or ReadRetry()

    async def _deps(self, incident_id: str, role: Role) -> tuple[AgentDeps, RecordingEdr]:
        """The agent's dependencies, its EDR reads remembered (what its claims rest on is kept
        from them: `orchestrator/activities/evidence.py`)."""
        tools = self.backends.read_tools(incident_id)
        recorder = RecordingEdr(tools.edr)
        tools = replace(tools, edr=recorder)
        if self.models is None:
            return AgentDeps(tools=tools, reads=self.reads), recorder
        await restore_usage(self.store, self.models, incident_id)
        model = self.models.for_incident(incident_id, role)
        # a playbook's investigation asks the investigation role's model (the same ledger)
        investigator = (
            self.models.for_incident(incident_id, "investigation")
            if role == "remediation"
            else None
        )
        deps = AgentDeps(tools=tools, model=model, reads=self.reads, investigator=investigator)
        return deps, recorder

    async def _save_usage(self, incident_id: str) -> None:
        if self.models is not None:
            await save_usage(self.store, self.models, incident_id)

    @activity.defn(name="agents.triage")
    async def triage(self, ref: IncidentRef) -> TriageResult:
        alerts = await self.store.alerts_for(ref.incident_id)
        deps, recorder = await self._deps(ref.incident_id, "triage")
        with agent_node_spans():
            result = await run_triage(deps, TriageInput(incident_id=ref.incident_id, alerts=alerts))
        # the agent decided a category; the routing file decides the playbook
        result = await route_triage(result, deps.tools.inventory)
        await keep_evidence(
            self.store, ref.incident_id, recorder, [r for c in result.claims for r in c.refs]
        )
        await audit_model_use(self.store, ref.incident_id, deps.model, triage_disagreements(result))
        await self._save_usage(ref.incident_id)
        await self.store.record_triage(
            ref.incident_id,
            verdict=result.verdict,
            severity=result.severity,
            category=result.category,
            confidence=result.confidence,
            playbook=result.playbook_id,
            knowledge_version=result.knowledge_version,
        )
        await self.store.append_audit(
            AuditEvent(
                type="agent.triage",
                actor="garrison-agent",
                incident_id=ref.incident_id,
                target=ref.incident_id,
                outcome=f"{result.verdict.value}:{result.category.value}",
                source=activity_source(),
                detail={
                    "confidence": result.confidence,
                    "model_used": result.model_used,
                    "knowledge_version": result.knowledge_version,
                    "evidence_gaps": "; ".join(result.evidence_gaps)[:1_000],
                    # One line per reason, for the console's rationale (escaped where shown).
                    "rationale": "\n".join(r.replace("\n", " ") for r in result.rationale)[:8_000],
                    # The lines that rest on records, with them (`agents.models.Claim`).
                    "claims": claims_json(
                        (c.text.replace("\n", " "), c.refs) for c in result.claims
                    ),
                },
            )
        )
        return result

    @activity.defn(name="playbooks.step")
    async def playbook_step(self, request: PlaybookStepInput) -> PlaybookStepResult:
        playbook = get_playbook(request.playbook_id)
        # The playbook's model questions are the remediation's, its investigation's loop the
        # investigation role's (both on the incident's one usage ledger).
        deps, recorder = await self._deps(request.incident_id, "remediation")
        start = None
        if request.resume is None:
            alerts = await self.store.alerts_for(request.incident_id)
            start = PlaybookStart(
                incident_id=request.incident_id, alerts=alerts, triage=request.triage
            )
        with agent_node_spans():
            step = await step_playbook(
                playbook,
                deps,
                self.checkpointer,
                thread_id=request.thread_id or request.incident_id,
                start=start,
                resume=request.resume,
            )
        await self._audit_rejected(request.incident_id, step.rejected)
        if step.report is not None:
            refs = [r for f in step.report.findings for r in f.refs]
            await keep_evidence(self.store, request.incident_id, recorder, refs)
            await audit_investigation(self.store, request.incident_id, step.report)
        await audit_model_use(
            self.store,
            request.incident_id,
            step_client(deps),
            [
                *investigation_disagreements(step.report),
                *remediation_disagreements(step.proposals, step.rejected),
            ],
        )
        evidence = Evidence.of(request.triage, step.report)
        known = known_targets(request.triage.entities, step.report)
        edr = retrying_edr(deps.tools.edr, deps.reads)
        gated = [
            await gate_facts(p, deps.tools.inventory, known, edr, evidence) for p in step.proposals
        ]
        result = PlaybookStepResult(
            proposals=gated,
            finished=step.finished,
            summary=step.summary,
            verdict=step.verdict,
            confidence=evidence.confidence(step.confidence),
            report=step.report,
        )
        await self._narrate(request, result)
        await self._save_usage(request.incident_id)
        return result

    async def _narrate(self, request: PlaybookStepInput, result: PlaybookStepResult) -> None:
        """The summaries role's narrative, when a model is configured for it and the step has
        proposals to justify or is the last: beside the result, never part of it."""
        if self.models is None or not (result.proposals or result.finished):
            return
        client = self.models.for_incident(request.incident_id, "summaries")
        if client is None:
            return
        try:
            facts = narrative_facts(
                request.triage,
                result.verdict,
                result.confidence,
                result.report,
                result.proposals,
                request.resume or [],
            )
            with agent_node_spans():
                await narrate(self.store, client, request.incident_id, facts)
        except Exception as error:  # the step's result never depends on its narrative
            await narrative_failed(self.store, request.incident_id, client.name, repr(error))
        await audit_model_use(self.store, request.incident_id, client, [])

    async def _audit_rejected(self, incident_id: str, rejected: list[RejectedChoice]) -> None:
        """Every model suggestion refused before the gate gets one `policy.deny` record (the
        step may run again after a crash, and the list holds earlier rounds too: dedupe)."""
        if not rejected:
            return
        seen = {
            entry.target
            for entry in await self.store.audit_entries(incident_id=incident_id)
            if entry.type == "policy.deny" and entry.actor == "policy:model-output"
        }
        for choice in rejected:
            target = f"{choice.kind}:{choice.target}"
            if target in seen:
                continue
            seen.add(target)
            await self.store.append_audit(
                AuditEvent(
                    type="policy.deny",
                    actor="policy:model-output",
                    incident_id=incident_id,
                    target=target,
                    outcome="deny",
                    source=activity_source(),
                    detail={"reason": choice.reason},
                )
            )
