"""Scenario L5: the model seam's limits. A model that answers garbage, a 1 MB answer, extra
arguments, an error, or nothing at all costs at most two calls and leaves the deterministic
answer; cancellation mid-call propagates at once."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from langchain_core.callbacks import AsyncCallbackManagerForLLMRun
from langchain_core.messages import BaseMessage
from langchain_core.outputs import ChatResult
from pydantic import Field

from agents import seam
from agents.remediation.prompts import ModelSelection
from agents.seam import ask_structured
from agents.triage.prompts import ModelVerdict
from tests.agents.scripted_model import ScriptedChatModel

GOOD = {"verdict": "malicious", "confidence": 0.7, "category": "discovery"}


class SequenceModel(ScriptedChatModel):
    """Answers the scripted answers in turn (an Exception is raised). `log` is shared with the
    copies `bind_tools` makes (a shallow copy), so it counts every call."""

    answers: list[Any] = Field(default_factory=list)
    log: list[str] = Field(default_factory=list)

    def _generate(self, messages: list[BaseMessage], *args: Any, **kwargs: Any) -> ChatResult:
        answer = self.answers[min(len(self.log), len(self.answers) - 1)]
        self.log.append("call")
        self.script = {self.tool or "": answer}
        return super()._generate(messages, *args, **kwargs)


class HangingModel(ScriptedChatModel):
    log: list[str] = Field(default_factory=list)

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        self.log.append("call")
        await asyncio.sleep(3600)
        raise AssertionError("unreachable")


async def ask(model: Any, **kwargs: Any) -> ModelVerdict | None:
    return await ask_structured(model, ModelVerdict, "classify", {"alert": "x"}, **kwargs)


@pytest.mark.parametrize(
    "bad",
    [
        {"verdict": "pwned", "confidence": 3, "category": "x"},  # schema-invalid
        {**GOOD, "isolate": "DC01"},  # an extra argument
        {**GOOD, "category": "discovery" + " " * 1_000_000},  # a 1 MB answer (invalid too)
        RuntimeError("provider error"),
    ],
    ids=["invalid", "extra-args", "1mb", "error"],
)
async def test_a_bad_answer_costs_two_calls_then_the_deterministic_path(bad: Any) -> None:
    model = SequenceModel(answers=[bad])
    assert await ask(model) is None
    assert len(model.log) == seam.MAX_ATTEMPTS == 2


async def test_an_answer_larger_than_any_honest_one_is_refused_even_when_it_validates() -> None:
    """50 actions with 1 KB targets validate against the schema, but no honest selection of
    candidates is 50 KB long: refused before it is used."""
    huge = {"actions": [{"kind": "isolate_host", "target": "H" * 1024}] * 50}
    assert len(str(huge)) > seam.MAX_ANSWER_CHARS
    model = SequenceModel(answers=[huge])
    assert await ask_structured(model, ModelSelection, "choose", {"candidates": []}) is None
    assert len(model.log) == 2
    small = SequenceModel(answers=[{"actions": [{"kind": "isolate_host", "target": "WS01"}]}])
    chosen = await ask_structured(small, ModelSelection, "choose", {"candidates": []})
    assert chosen is not None and chosen.actions[0].target == "WS01"


async def test_one_bad_answer_is_retried_once() -> None:
    model = SequenceModel(answers=[RuntimeError("flaky"), GOOD])
    answer = await ask(model)
    assert answer is not None and answer.confidence == 0.7
    assert len(model.log) == 2


async def test_a_model_that_never_answers_costs_two_timeouts() -> None:
    model = HangingModel()
    started = time.monotonic()
    assert await ask(model, timeout_s=0.2) is None
    assert len(model.log) == 2
    assert time.monotonic() - started < 2.0


async def test_cancellation_mid_call_propagates_at_once() -> None:
    model = HangingModel()
    task = asyncio.create_task(ask(model))
    for _ in range(500):  # the call starts within a few event-loop turns
        if model.log:
            break
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert len(model.log) == 1  # not retried after a cancellation
