from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

from agents.deps import AgentDeps
from agents.models import ActionOutcome, OutcomeStatus, ProposedAction
from agents.triage.graph import run_triage
from playbooks.base import ProposalRejected, propose
from playbooks.engine import PlaybookStart, step_playbook
from playbooks.registry import get_playbook, playbook_for
from tests.agents.fakes import read_tools
from tests.agents.scenarios import (
    dcsync_alerts,
    dcsync_edr,
    lsass_alerts,
    lsass_edr,
    triage_input,
    update_alerts,
    update_edr,
)
from tools.actions import ActionKind, IsolateHost, KillProcess
from tools.models import Verdict


@pytest.fixture(params=["memory", "sqlite"])
async def checkpointer(request, tmp_path: Path) -> AsyncIterator[BaseCheckpointSaver]:
    if request.param == "memory":
        yield InMemorySaver()
        return
    async with AsyncSqliteSaver.from_conn_string(str(tmp_path / "cp.sqlite")) as saver:
        yield saver


async def _start(deps: AgentDeps, alerts) -> PlaybookStart:
    triage = await run_triage(deps, triage_input(alerts))
    return PlaybookStart(incident_id="inc-1", alerts=alerts, triage=triage)


def _answer(step, status: OutcomeStatus) -> list[ActionOutcome]:
    return [ActionOutcome(action=p.action, status=status, risk=40) for p in step.proposals]


async def test_credential_access_rounds_propose_resume_finish(checkpointer) -> None:
    deps = AgentDeps(tools=read_tools(lsass_edr()))
    start = await _start(deps, lsass_alerts())
    playbook = playbook_for(start.triage.category)
    first = await step_playbook(playbook, deps, checkpointer, thread_id="inc-1", start=start)
    assert not first.finished
    assert {(p.action.kind, p.action.target) for p in first.proposals} >= {
        (ActionKind.ISOLATE_HOST, "PRD01"),
        (ActionKind.DISABLE_ACCOUNT, "pandalab\\pedro.gustavo"),
    }
    done = await step_playbook(
        playbook, deps, checkpointer, thread_id="inc-1",
        resume=_answer(first, OutcomeStatus.EXECUTED),
    )  # fmt: skip
    assert done.finished and done.proposals == []
    assert done.verdict is Verdict.MALICIOUS
    assert "isolate_host PRD01: executed" in done.summary


async def test_denied_isolation_leads_to_lesser_containment(checkpointer) -> None:
    deps = AgentDeps(tools=read_tools(lsass_edr()))
    start = await _start(deps, lsass_alerts())
    playbook = get_playbook("credential_access")
    first = await step_playbook(playbook, deps, checkpointer, thread_id="t2", start=start)
    denied = _answer(first, OutcomeStatus.DENIED)
    second = await step_playbook(playbook, deps, checkpointer, thread_id="t2", resume=denied)
    kinds = {(p.action.kind, p.action.target) for p in second.proposals}
    assert kinds == {
        (ActionKind.REVOKE_SESSIONS, "pandalab\\pedro.gustavo"),
        (ActionKind.RESET_CREDENTIALS, "pandalab\\pedro.gustavo"),
    }
    # a crash after the checkpoint: the same round again gives the same proposals
    again = await step_playbook(playbook, deps, checkpointer, thread_id="t2", resume=denied)
    assert again.proposals == second.proposals and not again.finished
    replay_first = await step_playbook(playbook, deps, checkpointer, thread_id="t2", start=start)
    assert replay_first.proposals == second.proposals
    last = await step_playbook(
        playbook, deps, checkpointer, thread_id="t2",
        resume=_answer(second, OutcomeStatus.EXECUTED),
    )  # fmt: skip
    assert last.finished
    assert "revoke_sessions pandalab\\pedro.gustavo: executed" in last.summary


async def test_dcsync_resets_krbtgt_and_contains_the_requesting_host(checkpointer) -> None:
    deps = AgentDeps(tools=read_tools(dcsync_edr()))
    start = await _start(deps, dcsync_alerts())
    playbook = playbook_for(start.triage.category)
    assert playbook.id == "credential_access"
    first = await step_playbook(playbook, deps, checkpointer, thread_id="t5", start=start)
    assert {(p.action.kind, p.action.target) for p in first.proposals} == {
        (ActionKind.ISOLATE_HOST, "PRD01"),  # where the request came from, not the DC
        (ActionKind.DISABLE_ACCOUNT, "pandalab\\pedro.gustavo"),
        (ActionKind.RESET_CREDENTIALS, "pandalab\\krbtgt"),
    }
    second = await step_playbook(
        playbook, deps, checkpointer, thread_id="t5",
        resume=_answer(first, OutcomeStatus.DENIED),
    )  # fmt: skip
    assert {(p.action.kind, p.action.target) for p in second.proposals} == {
        (ActionKind.REVOKE_SESSIONS, "pandalab\\pedro.gustavo"),
        (ActionKind.RESET_CREDENTIALS, "pandalab\\pedro.gustavo"),
    }


async def test_first_round_rerun_is_idempotent(checkpointer) -> None:
    deps = AgentDeps(tools=read_tools(lsass_edr()))
    start = await _start(deps, lsass_alerts())
    playbook = get_playbook("credential_access")
    one = await step_playbook(playbook, deps, checkpointer, thread_id="t3", start=start)
    two = await step_playbook(playbook, deps, checkpointer, thread_id="t3", start=start)
    assert one.proposals == two.proposals and one.proposals


async def test_triage_only_finishes_without_proposals(checkpointer) -> None:
    deps = AgentDeps(tools=read_tools(update_edr()))
    start = await _start(deps, update_alerts())
    playbook = playbook_for(start.triage.category)
    assert playbook.id == "triage_only"
    step = await step_playbook(playbook, deps, checkpointer, thread_id="t4", start=start)
    assert step.finished and step.proposals == []
    assert step.verdict is Verdict.BENIGN
    assert "no containment" in step.summary


class _Killed(BaseException):
    """The worker's death mid-round: raised by the checkpointer, caught by nothing."""


def _dies_after(saver: BaseCheckpointSaver, puts: int, writes: int) -> Callable[[], None]:
    """Make `saver` die on its `puts + 1`-th checkpoint or `writes + 1`-th write; returns the
    undo (the next attempt's worker, on the same storage)."""
    calls = {"puts": 0, "writes": 0}
    put, write = saver.aput, saver.aput_writes

    async def aput(*args: Any, **kwargs: Any) -> Any:
        calls["puts"] += 1
        if calls["puts"] > puts:
            raise _Killed
        return await put(*args, **kwargs)

    async def aput_writes(*args: Any, **kwargs: Any) -> Any:
        calls["writes"] += 1
        if calls["writes"] > writes:
            raise _Killed
        return await write(*args, **kwargs)

    saver.aput, saver.aput_writes = aput, aput_writes  # type: ignore[method-assign]

    def undo() -> None:
        saver.aput, saver.aput_writes = put, write  # type: ignore[method-assign]

    return undo


async def _retried_after_crash(
    playbook: Any, deps: AgentDeps, checkpointer: Any, puts: int, writes: int, **step: Any
) -> Any:
    """The step killed after `puts` checkpoints and `writes` writes, then run again."""
    undo = _dies_after(checkpointer, puts, writes)
    with pytest.raises(_Killed):
        await step_playbook(playbook, deps, checkpointer, **step)
    undo()
    return await step_playbook(playbook, deps, checkpointer, **step)


# (checkpoints, writes) kept before the death. A round writes one checkpoint when it ends, then
# its interrupt (`engine.DURABILITY`): the death before the checkpoint (nothing of the round
# recorded) and between the two (the round recorded, its proposals not).
@pytest.mark.parametrize(("puts", "writes"), [(0, 99), (1, 0)])
async def test_a_first_round_cut_short_by_a_crash_is_finished_on_retry(
    checkpointer, puts: int, writes: int
) -> None:
    deps = AgentDeps(tools=read_tools(lsass_edr()))
    start = await _start(deps, lsass_alerts())
    playbook = get_playbook("credential_access")
    whole = await step_playbook(playbook, deps, InMemorySaver(), thread_id="t6", start=start)
    again = await _retried_after_crash(
        playbook, deps, checkpointer, puts, writes, thread_id="t6", start=start
    )
    assert not again.finished
    assert again.proposals == whole.proposals and whole.proposals


@pytest.mark.parametrize(("puts", "writes"), [(0, 99), (99, 0)])
async def test_a_resumed_round_cut_short_by_a_crash_is_finished_on_retry(
    checkpointer, puts: int, writes: int
) -> None:
    deps = AgentDeps(tools=read_tools(lsass_edr()))
    start = await _start(deps, lsass_alerts())
    playbook = get_playbook("credential_access")
    reference = InMemorySaver()
    first = await step_playbook(playbook, deps, reference, thread_id="t7", start=start)
    denied = _answer(first, OutcomeStatus.DENIED)
    whole = await step_playbook(playbook, deps, reference, thread_id="t7", resume=denied)
    await step_playbook(playbook, deps, checkpointer, thread_id="t7", start=start)
    again = await _retried_after_crash(
        playbook, deps, checkpointer, puts, writes, thread_id="t7", resume=denied
    )
    assert not again.finished
    assert again.proposals == whole.proposals and whole.proposals


def test_disallowed_proposal_is_rejected() -> None:
    playbook = get_playbook("credential_access")
    bad = ProposedAction(action=KillProcess(target="PRD01:4242"), rationale="x")
    with pytest.raises(ProposalRejected, match="kill_process"):
        propose(playbook, [bad])
    with pytest.raises(ProposalRejected):
        propose(
            get_playbook("triage_only"),
            [ProposedAction(action=IsolateHost(target="PRD01"), rationale="x")],
        )
