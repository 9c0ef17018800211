"""The seam's per-incident limits (agents/model_client.py): a token budget, a cost budget and a
call cap shared by every question of an incident; once spent, no call is made, the agent keeps
its deterministic answer, and the incident's ledger says why. Also the recording and replay of
calls, keyed by a hash of the prompt and inputs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import Field

from agents.model_client import ModelClient, ModelLimits, ReplayMiss, Tape, UsageLedger
from agents.seam import ask_structured
from agents.triage.prompts import ModelVerdict
from tests.agents.scripted_model import ScriptedChatModel

GOOD = {"verdict": "malicious", "confidence": 0.7, "category": "discovery"}


class MeteredModel(ScriptedChatModel):
    """Answers `answer` (raises it when an Exception) with `tool_name`'s call, reporting `tokens`
    input and output tokens; counts its calls in `log`."""

    answer: Any = None
    tool_name: str | None = None  # None: the tool it was given
    tokens: int = 500
    log: list[str] = Field(default_factory=list)

    def _generate(self, messages: list[BaseMessage], *args: Any, **kwargs: Any) -> ChatResult:
        self.log.append("call")
        if isinstance(self.answer, Exception):
            raise self.answer
        call = {"name": self.tool_name or self.tool, "args": self.answer, "id": "c1"}
        usage = {
            "input_tokens": self.tokens,
            "output_tokens": self.tokens,
            "total_tokens": 2 * self.tokens,
        }
        message = AIMessage(content="", tool_calls=[call], usage_metadata=usage)  # type: ignore[arg-type]
        return ChatResult(generations=[ChatGeneration(message=message)])


def client(model: MeteredModel, **limits: Any) -> ModelClient:
    return ModelClient(chat=model, name="test:metered", limits=ModelLimits(**limits))


def recorded(folder: Path) -> list[Path]:
    return list(folder.glob("*.json"))


async def ask(c: ModelClient, data: object = None) -> ModelVerdict | None:
    return await ask_structured(c, ModelVerdict, "classify", {"alert": data or "x"})


async def test_the_token_budget_stops_calls_for_the_rest_of_the_incident() -> None:
    model = MeteredModel(answer=GOOD, tokens=500)
    c = client(model, max_tokens=1_500)
    assert await ask(c, "a") is not None  # 1 000 tokens
    assert await ask(c, "b") is not None  # 2 000: over, but the call was allowed when made
    assert await ask(c, "c") is None  # no call
    assert len(model.log) == 2
    assert c.ledger.budget_exceeded and c.ledger.tokens == 2_000
    assert any("token budget spent" in event for event in c.ledger.events)


async def test_the_cost_budget_stops_calls_and_the_cost_is_priced_per_million_tokens() -> None:
    model = MeteredModel(answer=GOOD, tokens=1_000)
    c = client(model, max_cost_usd=0.01, price_input_per_mtok=2.0, price_output_per_mtok=8.0)
    assert await ask(c, "a") is not None
    assert c.ledger.cost_usd == pytest.approx(0.01)
    assert await ask(c, "b") is None
    assert len(model.log) == 1
    assert any("cost budget spent" in event for event in c.ledger.events)


async def test_a_retry_storm_stops_at_the_incidents_call_cap() -> None:
    """A provider failing every call: each question tries twice, but the incident stops at its
    cap whatever the number of questions."""
    model = MeteredModel(answer=RuntimeError("overloaded"))
    c = client(model, max_calls=5)
    for _ in range(10):
        assert await ask(c) is None
    assert len(model.log) == 5
    assert any("call cap reached" in event for event in c.ledger.events)


async def test_a_call_to_a_tool_it_was_not_given_is_refused_even_with_valid_arguments() -> None:
    model = MeteredModel(answer=GOOD, tool_name="isolate_host")
    c = client(model)
    assert await ask(c) is None
    assert len(model.log) == 2
    assert any("tool it was not given: isolate_host" in event for event in c.ledger.events)


async def test_arguments_outside_the_schema_are_refused_and_noted() -> None:
    model = MeteredModel(answer={**GOOD, "confidence": 7})
    c = client(model)
    assert await ask(c) is None
    assert any("arguments outside the schema" in event for event in c.ledger.events)


async def test_a_recorded_call_replays_without_any_model(tmp_path: Path) -> None:
    live = MeteredModel(answer=GOOD, tokens=40)
    recording = ModelClient(chat=live, tape=Tape(tmp_path, "record"))
    answer = await ask(recording, "svchost.exe -k")
    assert answer is not None and len(recorded(tmp_path)) == 1

    replay = ModelClient(chat=None, tape=Tape(tmp_path, "replay"), ledger=UsageLedger())
    assert await ask(replay, "svchost.exe -k") == answer
    assert replay.ledger.tokens == 80  # the recorded usage counts against the budget too


async def test_a_replay_miss_is_named_and_never_retried(tmp_path: Path) -> None:
    tape = Tape(tmp_path, "replay")
    replay = ModelClient(chat=None, role="triage", tape=tape)
    assert await ask(replay, "never recorded") is None
    assert replay.ledger.calls == 1
    assert len(tape.misses) == 1 and tape.misses[0].startswith("triage/ModelVerdict ")
    with pytest.raises(ReplayMiss, match="no recording of triage/ModelVerdict"):
        tape.replay("triage", "ModelVerdict", [])


class GarbledModel(MeteredModel):
    """A valid call of the tool beside a second call whose arguments are not JSON."""

    def _generate(self, messages: list[BaseMessage], *args: Any, **kwargs: Any) -> ChatResult:
        self.log.append("call")
        garbled = {"name": "ModelVerdict", "args": '{"verdict": "benign",', "id": "c2"}
        message = AIMessage(
            content="",
            tool_calls=[{"name": "ModelVerdict", "args": GOOD, "id": "c1"}],
            invalid_tool_calls=[{**garbled, "error": "not JSON", "type": "invalid_tool_call"}],
        )
        return ChatResult(generations=[ChatGeneration(message=message)])


async def test_a_reply_with_a_garbled_tool_call_is_refused_whole() -> None:
    model = GarbledModel()
    c = client(model)
    assert await ask(c) is None
    assert any("unparseable arguments" in event for event in c.ledger.events)


async def test_the_same_question_twice_in_an_incident_costs_one_call() -> None:
    """An activity retried after a worker died mid-step asks again: answered from the ledger."""
    model = MeteredModel(answer=GOOD)
    c = client(model)
    first = await ask(c, "powershell -enc")
    assert first is not None and await ask(c, "powershell -enc") == first
    assert len(model.log) == 1 and c.ledger.calls == 1
    assert await ask(c, "another alert") is not None
    assert len(model.log) == 2
