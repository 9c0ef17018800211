"""The playbook's progress on the incident page, read from its LangGraph checkpoints.

A playbook's graph checkpoints on the store's own database (`orchestrator.store.checkpoints`),
one thread per pass: the incident's id for the first pass, `<id>#pass2`, `#pass3`... for the
follow-up passes a re-triage starts (`orchestrator.workflows.late_alerts`). For each pass found,
the graph's state says which playbook it runs (its triage), which steps ran (`versions_seen`),
which comes next and whether it is paused on proposals waiting for the policy gate, approvers
and responders (an interrupt), or finished. The graph is built and compiled only to read its
state (no node runs); the checkpoints are read, never written. Pure reads: an unknown playbook or
an unreadable checkpoint shows as such, never as an error page."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any, cast

MAX_PASSES = 20
DONE, WAITING, NEXT = "done", "waiting for decisions", "next"
TO_COME, NOT_RUN = "to come", "not run"


@dataclass(frozen=True)
class PassProgress:
    thread_id: str
    playbook_id: str
    title: str
    steps: list[tuple[str, str]]  # (step, one of DONE, WAITING, NEXT, TO_COME, NOT_RUN)
    state: str  # "finished", "waiting for decisions" or "running"
    outcomes: int  # proposals decided so far (executed, denied, failed...)


def pass_thread(incident_id: str, index: int) -> str:
    """The checkpointer thread of pass `index` (0: the first), as the workflow names it."""
    return incident_id if index == 0 else f"{incident_id}#pass{index + 1}"


def steps_of(
    graph_steps: list[str], seen: set[str], next_steps: set[str], waiting: bool
) -> list[tuple[str, str]]:
    finished = not next_steps
    found = []
    for step in graph_steps:
        if step in next_steps:
            found.append((step, WAITING if waiting else NEXT))
        elif step in seen:
            found.append((step, DONE))
        else:
            found.append((step, NOT_RUN if finished else TO_COME))
    return found


class ProgressReader:
    """Reads the checkpoints through one checkpointer, opened at the first page that needs it and
    kept (on Postgres, opening one takes the schema lock to check its migrations: not per page);
    a failed read closes it, so the next page opens a fresh one."""

    def __init__(self, database_url: str) -> None:
        self.database_url = database_url
        self._lock = asyncio.Lock()
        self._stack: AsyncExitStack | None = None
        self._saver: Any = None

    async def read(self, incident_id: str) -> list[PassProgress]:
        """Every pass of the incident's playbook found in the checkpoints, first pass first."""
        saver = await self._open()
        try:
            passes: list[PassProgress] = []
            for index in range(MAX_PASSES):
                thread = pass_thread(incident_id, index)
                config: Any = {"configurable": {"thread_id": thread, "checkpoint_ns": ""}}
                latest = await saver.aget_tuple(config)
                if latest is None:
                    break
                passes.append(await _pass_of(saver, config, thread, latest))
            return passes
        except Exception:
            await self.aclose()
            raise

    async def _open(self) -> Any:
        from orchestrator.composition import checkpoint_types
        from orchestrator.store.checkpoints import langgraph_checkpointer

        async with self._lock:
            if self._saver is None:
                stack = AsyncExitStack()
                self._saver = await stack.enter_async_context(
                    langgraph_checkpointer(self.database_url, checkpoint_types())
                )
                self._stack = stack
            return self._saver

    async def aclose(self) -> None:
        async with self._lock:
            stack, self._stack, self._saver = self._stack, None, None
        if stack is not None:
            await stack.aclose()


async def _pass_of(saver: Any, config: Any, thread: str, latest: Any) -> PassProgress:
    from agents.deps import AgentDeps
    from playbooks.base import PlaybookDeps
    from playbooks.registry import UnknownPlaybook, get_playbook

    values = latest.checkpoint.get("channel_values", {})
    triage = values.get("triage")
    playbook_id = str(getattr(triage, "playbook_id", "") or "?")
    outcomes = len(values.get("outcomes") or [])
    seen = {str(k) for k in latest.checkpoint.get("versions_seen", {}) if not k.startswith("__")}
    try:
        playbook = get_playbook(playbook_id)
    except UnknownPlaybook:
        steps = [(step, DONE) for step in sorted(seen)]
        return PassProgress(thread, playbook_id, "(unknown playbook)", steps, "unknown", outcomes)
    # Built only to read the state: the nodes hold `deps` but none runs.
    graph = playbook.build(PlaybookDeps(agents=cast(AgentDeps, None), playbook=playbook))
    snapshot = await graph.compile(checkpointer=saver).aget_state(config)
    next_steps = {str(s) for s in snapshot.next}
    waiting = any(task.interrupts for task in snapshot.tasks)
    steps = steps_of([str(s) for s in graph.nodes], seen, next_steps, waiting)
    state = "finished" if not next_steps else (WAITING if waiting else "running")
    return PassProgress(thread, playbook.id, playbook.title, steps, state, outcomes)
