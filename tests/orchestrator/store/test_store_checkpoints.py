"""LangGraph checkpoints on the store's database: a paused graph resumes from another connection."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from typing import TypedDict

from langgraph.checkpoint.base import empty_checkpoint
from langgraph.graph import END, START, StateGraph
from langgraph.types import Command, interrupt

from orchestrator.store import Store, langgraph_checkpointer
from orchestrator.store.checkpoints import PatientSqliteSaver
from tests.orchestrator.store.store_factories import make_incident


class _State(TypedDict):
    rounds: int
    approved: bool


def _investigate(state: _State) -> dict[str, int]:
    return {"rounds": state["rounds"] + 1}


def _propose(state: _State) -> dict[str, bool]:
    return {"approved": bool(interrupt({"propose": "isolate_host", "target": "WS01"}))}


def _builder() -> StateGraph:
    builder = StateGraph(_State)
    builder.add_node("investigate", _investigate)
    builder.add_node("propose", _propose)
    builder.add_edge(START, "investigate")
    builder.add_edge("investigate", "propose")
    builder.add_edge("propose", END)
    return builder


async def test_graph_checkpoints_and_resumes_on_the_store_database(
    store: Store, db_url: str
) -> None:
    config = {"configurable": {"thread_id": f"inc-{uuid.uuid4().hex}"}}

    async with langgraph_checkpointer(db_url) as saver:
        paused = (
            await _builder()
            .compile(checkpointer=saver)
            .ainvoke({"rounds": 0, "approved": False}, config)
        )
    # The store keeps working on the same database while checkpoints live there.
    await store.ensure_incident(make_incident("inc-1"))
    async with langgraph_checkpointer(db_url) as saver:
        resumed = await _builder().compile(checkpointer=saver).ainvoke(Command(resume=True), config)

    assert paused["__interrupt__"][0].value == {"propose": "isolate_host", "target": "WS01"}
    assert resumed == {"rounds": 1, "approved": True}
    assert await store.get_incident("inc-1") is not None


async def test_a_cancelled_checkpoint_write_never_keeps_the_write_lock(
    store: Store, db_url: str
) -> None:
    # A cancelled activity (a terminated workflow, a lost heartbeat) cancels its graph mid-write.
    # Stopped between its INSERT and COMMIT, the saver's shared connection used to stay inside a
    # write transaction, and on SQLite every other writer of the store then waited on it.
    async with langgraph_checkpointer(db_url) as saver:
        for attempt in range(60):
            config = {"configurable": {"thread_id": f"t-{attempt}", "checkpoint_ns": ""}}
            write = asyncio.ensure_future(saver.aput(config, empty_checkpoint(), {}, {}))
            await asyncio.sleep(0.0005 * (attempt % 7))  # cancelled at varying points
            write.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await write
            if isinstance(saver, PatientSqliteSaver):
                assert not saver.conn.in_transaction, f"attempt {attempt} left a transaction open"
            await asyncio.wait_for(store.ensure_incident(make_incident(f"inc-{attempt}")), 10)
