"""A configured chat model as the agents see it: the provider's model (or a recording of one),
the limits of the seam, and the usage ledger of the incident it serves.

The seam (`agents/seam.py`) asks every question through a `ModelClient`; the ledger is per
incident, so the call cap (a retry storm), the token budget and the cost budget hold across the
incident's triage and playbook steps. When a limit is reached the seam returns no answer and the
agent keeps its deterministic one; the ledger's `events` say so, and the activity audits them.

A `Tape` records each call's request and response under a hash of the prompt and inputs
(`record`), or answers from such a recording without any provider (`replay`); a replay that
misses raises `ReplayMiss`, naming the call.
"""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage

ROLES = ("triage", "investigation", "remediation", "summaries")
Role = Literal["triage", "investigation", "remediation", "summaries"]
LEDGERS_KEPT = 4_096  # incidents whose usage a process remembers (least recent forgotten)


@dataclass(frozen=True)
class ModelLimits:
    """The seam's limits: per call (timeout, attempts) and per incident (calls, tokens, cost)."""

    timeout_s: float = 60.0  # one call; a hung provider costs at most this per attempt
    max_attempts: int = 2  # calls per question: the first and one retry
    max_calls: int = 24  # calls per incident, whatever the questions: a retry storm stops here
    max_tokens: int = 200_000  # input + output tokens per incident
    max_cost_usd: float | None = None  # per incident, at the prices below; None: no cost cap
    price_input_per_mtok: float = 0.0  # USD per million input tokens
    price_output_per_mtok: float = 0.0
    # model calls of one investigation's tool-using loop (`agents/investigation/model_loop.py`):
    # a model that never stops asking stops here, whatever the per-incident budgets still allow
    max_steps: int = 8
    # wall-clock seconds of that loop, its model calls and its reads: the agents' activity
    # (600 s to close) must still have the remediation's calls' time after it
    loop_deadline_s: float = 240.0

    def cost(self, input_tokens: int, output_tokens: int) -> float:
        return (
            input_tokens * self.price_input_per_mtok + output_tokens * self.price_output_per_mtok
        ) / 1_000_000


@dataclass
class RoleUsage:
    """One role's share of an incident's usage: what the store keeps per incident and role."""

    calls: int = 0
    answered: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    latency_s: float = 0.0


@dataclass
class UsageLedger:
    """What one incident's model calls have cost so far, and what the seam refused or skipped.
    The totals hold across roles (the budgets are per incident); `roles` splits them by role."""

    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    latency_s: float = 0.0
    answered: int = 0  # questions that got a usable answer
    events: list[str] = field(default_factory=list)  # audited by the activity, then cleared
    disagreements: list[str] = field(default_factory=list)  # where the model and rules differ
    # Usable replies by call key: the same question again in this incident (an activity retried
    # after a crash, a playbook round resumed) is answered without another call.
    answers: dict[str, AIMessage] = field(default_factory=dict)
    budget_exceeded: bool = False
    roles: dict[str, RoleUsage] = field(default_factory=dict)

    def role(self, role: str) -> RoleUsage:
        return self.roles.setdefault(role, RoleUsage())

    def count_call(self, role: str) -> None:
        self.calls += 1
        self.role(role).calls += 1

    def count_answer(self, role: str) -> None:
        self.answered += 1
        self.role(role).answered += 1

    def restore(self, roles: dict[str, RoleUsage], budget_exceeded: bool = False) -> None:
        """Start from what the store kept (a worker restarted, the incident moved workers): the
        totals are the roles' sums, so the budgets keep counting from there."""
        self.roles = {name: RoleUsage(**vars(usage)) for name, usage in roles.items()}
        self.calls = sum(u.calls for u in roles.values())
        self.answered = sum(u.answered for u in roles.values())
        self.input_tokens = sum(u.input_tokens for u in roles.values())
        self.output_tokens = sum(u.output_tokens for u in roles.values())
        self.cost_usd = sum(u.cost_usd for u in roles.values())
        self.latency_s = sum(u.latency_s for u in roles.values())
        self.budget_exceeded = budget_exceeded

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def exhausted(self, limits: ModelLimits) -> str | None:
        """Why no further call may be made for this incident, or None."""
        if self.calls >= limits.max_calls:
            return f"call cap reached ({self.calls}/{limits.max_calls} calls)"
        if self.tokens >= limits.max_tokens:
            return f"token budget spent ({self.tokens}/{limits.max_tokens} tokens)"
        if limits.max_cost_usd is not None and self.cost_usd >= limits.max_cost_usd:
            return f"cost budget spent (${self.cost_usd:.4f}/${limits.max_cost_usd:.4f})"
        return None

    def add(
        self, message: AIMessage, latency_s: float, limits: ModelLimits, role: str = "triage"
    ) -> None:
        usage = message.usage_metadata or {}
        input_tokens = int(usage.get("input_tokens", 0) or 0)
        output_tokens = int(usage.get("output_tokens", 0) or 0)
        cost = limits.cost(input_tokens, output_tokens)
        for counts in (self, self.role(role)):
            counts.input_tokens += input_tokens
            counts.output_tokens += output_tokens
            counts.cost_usd += cost
            counts.latency_s += latency_s

    def take_events(self) -> list[str]:
        events, self.events = self.events, []
        return events

    def summary(self) -> dict[str, object]:
        return {
            "calls": self.calls,
            "answered": self.answered,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cost_usd": round(self.cost_usd, 6),
            "latency_s": round(self.latency_s, 3),
            "budget_exceeded": self.budget_exceeded,
            "disagreements": list(self.disagreements),
        }


class ReplayMiss(LookupError):
    """A replayed run asked a question its recording does not hold."""


def call_key(schema_name: str, messages: list[BaseMessage]) -> str:
    """The hash of a call's prompt and inputs: the schema asked for and every message's text."""
    body = json.dumps(
        {"schema": schema_name, "messages": [_message_key(m) for m in messages]},
        sort_keys=True,
        ensure_ascii=True,
    )
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


def _message_key(message: BaseMessage) -> list[object]:
    """A message's type and text, and the tool calls an answer in a conversation made (the
    investigation's loop): a one-question call has none, so its key is what it always was. A
    call's id is left out: providers make them up per answer, so two incidents asking the same
    first question would record answers alike but for their ids, and the one kept would not key
    the other's next turn (a replay miss)."""
    key: list[object] = [message.type, str(message.content)]
    if isinstance(message, AIMessage) and message.tool_calls:
        key.append([[c["name"], c["args"]] for c in message.tool_calls])
    return key


@dataclass
class Tape:
    """A folder of recorded calls, one `<key>.json` each. `mode`: record (write every live call)
    or replay (answer from the folder; a miss raises `ReplayMiss` and is kept in `misses`)."""

    folder: Path
    mode: Literal["record", "replay"]
    misses: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.mode == "record":
            self.folder.mkdir(parents=True, exist_ok=True)
        elif not self.folder.is_dir():
            raise FileNotFoundError(f"no model recording at {self.folder}")

    def replay(self, role: str, schema_name: str, messages: list[BaseMessage]) -> AIMessage:
        key = call_key(schema_name, messages)
        path = self.folder / f"{key}.json"
        if not path.is_file():
            name = f"{role}/{schema_name} {key[:16]}"
            self.misses.append(name)
            raise ReplayMiss(f"model replay: no recording of {name} in {self.folder}")
        saved = json.loads(path.read_text("utf-8"))["response"]
        return AIMessage(
            content=saved.get("content", ""),
            tool_calls=saved.get("tool_calls", []),
            invalid_tool_calls=saved.get("invalid_tool_calls", []),
            usage_metadata=saved.get("usage"),
        )

    def record(
        self, role: str, schema_name: str, messages: list[BaseMessage], answer: AIMessage
    ) -> None:
        key = call_key(schema_name, messages)
        entry = {
            "call": f"{role}/{schema_name}",
            "request": [_message_key(m) for m in messages],
            "response": {
                "content": answer.content if isinstance(answer.content, str) else "",
                "tool_calls": [
                    {"name": c["name"], "args": c["args"], "id": c.get("id") or "call"}
                    for c in answer.tool_calls
                ],
                "usage": dict(answer.usage_metadata) if answer.usage_metadata else None,
            },
        }
        if answer.invalid_tool_calls:  # unparseable arguments: replayed as refused as they were
            entry["response"]["invalid_tool_calls"] = [  # type: ignore[index]
                {
                    "name": c.get("name"),
                    "args": c.get("args"),
                    "id": c.get("id"),
                    "error": c.get("error"),
                    "type": "invalid_tool_call",
                }
                for c in answer.invalid_tool_calls
            ]
        target = self.folder / f"{key}.json"
        temporary = target.with_suffix(".tmp")
        temporary.write_text(json.dumps(entry, indent=1, sort_keys=True), "utf-8")
        temporary.replace(target)  # concurrent identical calls write the same content


@dataclass
class ModelClient:
    """One role's model for one incident. `chat` is None only when replaying a `tape`."""

    chat: BaseChatModel | None
    role: str = "triage"
    name: str = "model"  # provider:model, for the audit and the scorecard
    limits: ModelLimits = field(default_factory=ModelLimits)
    ledger: UsageLedger = field(default_factory=UsageLedger)
    tape: Tape | None = None

    @property
    def replaying(self) -> bool:
        return self.tape is not None and self.tape.mode == "replay"


@dataclass
class AgentModels:
    """The configured model of each role (None: that role reasons deterministically), and one
    usage ledger per incident shared by its roles, so that the budgets are per incident."""

    chats: dict[str, BaseChatModel | None]
    names: dict[str, str]
    limits: ModelLimits = field(default_factory=ModelLimits)
    tape: Tape | None = None
    _ledgers: OrderedDict[str, UsageLedger] = field(default_factory=OrderedDict)

    @classmethod
    def single(cls, chat: BaseChatModel, name: str = "model", **kwargs: Any) -> AgentModels:
        return cls(chats=dict.fromkeys(ROLES, chat), names=dict.fromkeys(ROLES, name), **kwargs)

    def configured(self, role: str) -> bool:
        return self.chats.get(role) is not None or (
            self.tape is not None and self.tape.mode == "replay" and role in self.names
        )

    def ledger(self, incident_id: str) -> UsageLedger:
        ledger = self._ledgers.pop(incident_id, None) or UsageLedger()
        self._ledgers[incident_id] = ledger
        while len(self._ledgers) > LEDGERS_KEPT:
            self._ledgers.popitem(last=False)
        return ledger

    def for_incident(self, incident_id: str, role: str) -> ModelClient | None:
        if not self.configured(role):
            return None
        return ModelClient(
            chat=self.chats.get(role),
            role=role,
            name=self.names.get(role, "model"),
            limits=self.limits,
            ledger=self.ledger(incident_id),
            tape=self.tape,
        )
