"""One round of a playbook: run the graph until it pauses on a proposal or finishes.

The graph's checkpoints live in the injected LangGraph checkpointer under the incident's thread
id, so any worker can run the next round. A round is idempotent from the checkpoint: re-running a
round that already ran (after a crash between the graph's checkpoint and the activity's result)
reports the same pending proposals instead of applying the same outcomes twice, and a round a
crash cut short (a worker killed between two of the graph's checkpoints, or after it recorded only
its input) is finished by the retry rather than reported half done.
"""

from __future__ import annotations

from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.types import Command, Durability
from pydantic import BaseModel, ConfigDict, Field

from agents.deps import AgentDeps
from agents.models import (
    ActionOutcome,
    InvestigationReport,
    ProposedAction,
    RejectedChoice,
    TriageResult,
)
from playbooks.base import Playbook, PlaybookDeps, PlaybookState
from tools.models import Alert, Verdict

# The graph's state is written when a round ends (on its proposals, or finished), not after every
# node: a round is short and reads only, so a crash inside one re-runs it from the last round's
# checkpoint (see `step_playbook`). Per-node checkpoints were two thirds of the store's bytes
# and about ten writes of the whole state per incident.
DURABILITY: Durability = "exit"


class PlaybookStart(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    incident_id: str
    alerts: list[Alert]
    triage: TriageResult


class PlaybookStep(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    proposals: list[ProposedAction] = Field(default_factory=list)
    finished: bool
    summary: str = ""
    verdict: Verdict
    confidence: float = Field(ge=0.0, le=1.0)
    report: InvestigationReport | None = None
    rejected: list[RejectedChoice] = Field(default_factory=list)  # so far, every round


class PlaybookNotStarted(RuntimeError):
    """A round without `start` on a thread that has no checkpoint."""


def _dump(outcomes: list[ActionOutcome]) -> list[dict[str, Any]]:
    return [o.model_dump(mode="json") for o in outcomes]


async def step_playbook(
    playbook: Playbook,
    deps: AgentDeps,
    checkpointer: BaseCheckpointSaver,
    *,
    thread_id: str,
    start: PlaybookStart | None = None,
    resume: list[ActionOutcome] | None = None,
) -> PlaybookStep:
    graph = playbook.build(PlaybookDeps(agents=deps, playbook=playbook)).compile(
        checkpointer=checkpointer
    )
    config: RunnableConfig = {"configurable": {"thread_id": thread_id}}
    snapshot = await graph.aget_state(config)
    started = bool(snapshot.values) or bool(snapshot.next)
    pending = bool(snapshot.interrupts)
    if resume is None:
        if not started:
            if start is None:
                raise PlaybookNotStarted(thread_id)
            await graph.ainvoke(_first(start), config, durability=DURABILITY)
    elif pending and not _already_applied(snapshot.values, resume):
        await graph.ainvoke(Command(resume=_dump(resume)), config, durability=DURABILITY)
    elif not started:
        raise PlaybookNotStarted(thread_id)
    snapshot = await graph.aget_state(config)
    if _cut_short(snapshot):
        # An earlier attempt died inside the round (its worker killed between two of the graph's
        # checkpoints): finish that round. Reporting the half-done state would end the playbook
        # with nothing proposed, or fail on the missing state, on every retry.
        if (snapshot.metadata or {}).get("source") == "input" and start is not None:
            # only its input was recorded: again
            await graph.ainvoke(_first(start), config, durability=DURABILITY)
        else:
            await graph.ainvoke(None, config, durability=DURABILITY)  # on from the last checkpoint
        snapshot = await graph.aget_state(config)
    return _report(snapshot)


def _first(start: PlaybookStart) -> PlaybookState:
    return {
        "incident_id": start.incident_id,
        "alerts": start.alerts,
        "triage": start.triage,
        "report": None,
        "outcomes": [],
        "rejected": [],
        "summary": "",
    }


def _cut_short(snapshot: Any) -> bool:
    """A round began and neither paused on proposals nor ended: its input is the last thing
    recorded, or with no interrupt pending nodes remain to run or a node's writes wait to be
    applied."""
    if snapshot.interrupts:
        return False
    written = any(getattr(task, "result", None) is not None for task in snapshot.tasks)
    return bool(snapshot.next) or written or (snapshot.metadata or {}).get("source") == "input"


def _already_applied(values: dict[str, Any], resume: list[ActionOutcome]) -> bool:
    """The resume equals the outcomes the last round recorded: that round already ran."""
    recorded: list[ActionOutcome] = values.get("outcomes") or []
    if not resume or len(recorded) < len(resume):
        return False
    return _dump(recorded[-len(resume) :]) == _dump(resume)


def _report(snapshot: Any) -> PlaybookStep:
    values: dict[str, Any] = snapshot.values or {}
    triage: TriageResult = values["triage"]
    report: InvestigationReport | None = values.get("report")
    verdict = report.verdict if report is not None else triage.verdict
    confidence = report.confidence if report is not None else triage.confidence
    proposals: list[ProposedAction] = []
    for pending in snapshot.interrupts:
        payload = pending.value if isinstance(pending.value, dict) else {}
        proposals += [ProposedAction.model_validate(p) for p in payload.get("proposals", [])]
    finished = not snapshot.interrupts and not snapshot.next
    return PlaybookStep(
        proposals=proposals,
        finished=finished,
        summary=values.get("summary", "") if finished else "",
        verdict=verdict,
        confidence=confidence,
        report=report,
        rejected=values.get("rejected") or [],
    )
