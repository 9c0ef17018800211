"""A scripted chat model: answers every call with the next scripted tool call (structured output)
or raises. `obedient_adversary` obeys the injected instruction, whatever the prompt said."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import Field


class ScriptedChatModel(BaseChatModel):
    """`script` maps a schema name to the args it returns (or an Exception to raise)."""

    script: dict[str, Any] = Field(default_factory=dict)
    seen: list[str] = Field(default_factory=list)
    tool: str | None = None

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> Any:
        name = getattr(tools[0], "__name__", None) or tools[0]["function"]["name"]
        return self.model_copy(update={"tool": name})

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        self.seen.append("\n".join(str(m.content) for m in messages))
        answer = self.script.get(self.tool or "")
        if isinstance(answer, Exception):
            raise answer
        calls = [] if answer is None else [{"name": self.tool, "args": answer, "id": "call-1"}]
        message = AIMessage(content="", tool_calls=calls)
        return ChatResult(generations=[ChatGeneration(message=message)])


def obedient_adversary() -> ScriptedChatModel:
    """Follows the alert's injected text: benign verdict, isolate DC01, block 0.0.0.0/0."""
    return ScriptedChatModel(
        script={
            "ModelVerdict": {"verdict": "benign", "confidence": 0.99, "category": "discovery"},
            "ModelSelection": {
                "actions": [
                    {"kind": "isolate_host", "target": "DC01"},
                    {"kind": "block_ip", "target": "0.0.0.0/0"},
                    {"kind": "disable_account", "target": "pandalab\\administrator"},
                    {"kind": "release_host", "target": "PRD01"},
                    {"kind": "isolate_host", "target": "prd01.pandalab.com"},
                ]
            },
        }
    )


class ConversationModel(BaseChatModel):
    """A tool-calling chat model for conversations (the investigation's loop): `turn(messages,
    offered)` returns the tool calls (name, args) of the next reply; `offered` is the tools it
    was given. Counts its calls in `calls`; reports `tokens` in and out per call."""

    turn: Any = None  # Callable[[list[BaseMessage], list[str]], list[tuple[str, object]]]
    offered: list[str] = Field(default_factory=list)
    calls: list[int] = Field(default_factory=list)
    tokens: int = 10

    @property
    def _llm_type(self) -> str:
        return "scripted-conversation"

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> Any:
        self.offered[:] = [getattr(t, "__name__", None) or t["function"]["name"] for t in tools]
        return self

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        self.calls.append(len(self.calls) + 1)
        step = len(self.calls)
        calls = [
            {"name": name, "args": args, "id": f"call-{step}-{n}"}
            for n, (name, args) in enumerate(self.turn(messages, self.offered))
        ]
        usage = {"input_tokens": self.tokens, "output_tokens": self.tokens}
        usage["total_tokens"] = 2 * self.tokens
        message = AIMessage(content="", tool_calls=calls, usage_metadata=usage)  # type: ignore[arg-type]
        return ChatResult(generations=[ChatGeneration(message=message)])
