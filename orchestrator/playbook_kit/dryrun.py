"""`garrison playbook dry-run`: a playbook on a recorded incident, round by round, with every
proposal scored by the policy gate as the workflow would (facts from the in-memory twins, the
verdict confidence capped on degraded evidence), and nothing executed.

No Temporal: the engine (`playbooks.engine.step_playbook`) is driven directly with an in-memory
checkpointer. The workflow's answers are simulated: an allowed proposal is reported `executed`
to the graph (it was not: the twins are untouched), a denied one `denied`, and one that needs an
approval as the chosen `approvals` mode says (`approve`, `deny` or `expire`), so the author sees
the fallbacks too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer

import simulations
from agents.deps import AgentDeps
from agents.models import ActionOutcome, OutcomeStatus, ProposedAction, TriageInput, TriageResult
from agents.reads import retrying_edr
from agents.triage.graph import run_triage
from orchestrator.activities.degraded import Evidence, gate_facts
from orchestrator.activities.facts import known_targets
from orchestrator.playbook_kit.loading import KitError
from orchestrator.policy.evaluate import DecisionOutcome, PolicyDecision, evaluate
from orchestrator.policy.model import PolicyDocument, load_policy
from playbooks.base import Playbook
from playbooks.engine import PlaybookStart, step_playbook
from simulations.backends import memory_backends
from simulations.loader import IncidentError, LoadedIncident, load_incident
from simulations.spec import RecordedIncident
from tools.actions import ActionKind

DEFAULT_CORPUS = Path(simulations.__file__).parent / "incidents"  # the committed corpus
MAX_ROUNDS = 10


class Approvals(StrEnum):
    APPROVE = "approve"
    DENY = "deny"
    EXPIRE = "expire"


@dataclass(frozen=True)
class GatedDecision:
    proposal: ProposedAction
    decision: PolicyDecision
    outcome: OutcomeStatus  # what the graph was told


@dataclass
class DryRun:
    incident: RecordedIncident
    triage: TriageResult
    rounds: list[list[GatedDecision]] = field(default_factory=list)
    summary: str = ""
    finished: bool = False

    @property
    def decisions(self) -> list[GatedDecision]:
        return [d for r in self.rounds for d in r]

    @property
    def proposed(self) -> set[tuple[ActionKind, str]]:
        return {(d.proposal.action.kind, d.proposal.action.target) for d in self.decisions}


def find_incident(ref: str | Path, corpus: Path = DEFAULT_CORPUS) -> LoadedIncident:
    """A recorded incident by folder, or by id in the corpus."""
    folder = Path(ref)
    if not (folder / "incident.json").is_file():
        folder = corpus / str(ref)
    if not (folder / "incident.json").is_file():
        raise KitError(
            f"no recorded incident {ref}: not a folder with incident.json, nor in {corpus}"
        )
    try:
        return LoadedIncident(folder, load_incident(folder))
    except IncidentError as error:
        raise KitError(str(error)) from None


async def dry_run(
    playbook: Playbook,
    loaded: LoadedIncident,
    approvals: Approvals = Approvals.APPROVE,
    policy: PolicyDocument | None = None,
) -> DryRun:
    policy = policy or load_policy()
    spec = loaded.spec
    read, _ = memory_backends(spec.environment, loaded.telemetry())
    deps = AgentDeps(tools=read)
    triage = await run_triage(deps, TriageInput(incident_id=spec.id, alerts=spec.alerts))
    run = DryRun(incident=spec, triage=triage)
    start = PlaybookStart(incident_id=spec.id, alerts=spec.alerts, triage=triage)
    from orchestrator.composition import checkpoint_types

    # the production allow-list: state a checkpoint could not give back fails here too
    saver = InMemorySaver(
        serde=JsonPlusSerializer(allowed_msgpack_modules=list(checkpoint_types()))
    )
    resume: list[ActionOutcome] | None = None
    isolations = 0
    for _ in range(MAX_ROUNDS):
        step = await step_playbook(
            playbook, deps, saver, thread_id=spec.id,
            start=start if resume is None else None, resume=resume,
        )  # fmt: skip
        if step.finished:
            run.summary, run.finished = step.summary, True
            return run
        evidence = Evidence.of(triage, step.report)
        known = known_targets(triage.entities, step.report)
        edr = retrying_edr(read.edr, deps.reads)
        confidence = evidence.confidence(step.confidence)
        decided: list[GatedDecision] = []
        for proposal in step.proposals:
            gated = await gate_facts(proposal, read.inventory, known, edr, evidence)
            decision = evaluate(policy, proposal.action, gated.facts, confidence, isolations)
            status = _answer(decision, approvals)
            if status is OutcomeStatus.EXECUTED and proposal.action.kind is ActionKind.ISOLATE_HOST:
                isolations += 1
            decided.append(GatedDecision(proposal, decision, status))
        run.rounds.append(decided)
        resume = [
            ActionOutcome(action=d.proposal.action, status=d.outcome, risk=d.decision.risk)
            for d in decided
        ]
    return run


def _answer(decision: PolicyDecision, approvals: Approvals) -> OutcomeStatus:
    match decision.outcome:
        case DecisionOutcome.ALLOW:
            return OutcomeStatus.EXECUTED
        case DecisionOutcome.DENY:
            return OutcomeStatus.DENIED
        case DecisionOutcome.NEEDS_APPROVAL:
            return {
                Approvals.APPROVE: OutcomeStatus.EXECUTED,
                Approvals.DENY: OutcomeStatus.DENIED,
                Approvals.EXPIRE: OutcomeStatus.EXPIRED,
            }[approvals]


def expected_coverage(run: DryRun) -> tuple[list[str], list[str]]:
    """The incident's expected actions the playbook proposed and those it missed, as
    `kind target` lines (targets compared case-insensitively)."""
    proposed = {(k, t.lower()) for k, t in run.proposed}
    hit, missed = [], []
    for expected in run.incident.truth.expected_actions:
        line = f"{expected.kind.value} {expected.target}"
        (hit if (expected.kind, expected.target.lower()) in proposed else missed).append(line)
    return hit, missed


def incidents_for(playbook: Playbook, corpus: Path = DEFAULT_CORPUS) -> list[LoadedIncident]:
    """The recorded incidents whose true category the playbook handles."""
    found = []
    for folder in sorted(p.parent for p in corpus.glob("*/incident.json")):
        loaded = find_incident(folder, corpus)
        if loaded.spec.truth.category in playbook.categories:
            found.append(loaded)
    return found
