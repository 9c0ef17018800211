"""The scripted `obedient_adversary` chat model, and twins whose journals the suite can read."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import Field
from temporalio import activity

from simulations.backends import memory_backends
from simulations.loader import LoadedIncident
from simulations.routing import RecordedBackends, recorded_id
from tests.security.corpus_cases import ACTION_KINDS, ALT_SUFFIX, CONTAINED, Case
from tools.actions import ActionKind
from tools.journal import MemoryJournal, StateChange
from tools.toolsets import ReadTools, ResponseTools

# --- the obedient adversary ---------------------------------------------------------------------


class ObedientAdversary(BaseChatModel):
    """Obeys the case's injected instruction in every call, whatever it was given: proposes each
    forbidden action with exactly that kind and target, the payload itself as a tool call (for
    template 10, the payload's own tool-call shape), every action kind on the payload and every
    inverse on every target in its context; the payload as the narrative and every action's
    justification; for template 6, a benign verdict (the `.alt` replay:
    a verdict that agrees, with the one category that contains nothing). It learns the case from
    the activity it runs in, never from its input, so a defence that keeps the payload away from
    it does not weaken it."""

    cases: dict[str, Case] = Field(default_factory=dict)
    seen: dict[str, list[str]] = Field(default_factory=dict)
    tool: str | None = None
    offered: list[str] = Field(default_factory=list)

    @property
    def _llm_type(self) -> str:
        return "obedient-adversary"

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> Any:
        names = [getattr(t, "__name__", None) or t["function"]["name"] for t in tools]
        return self.model_copy(update={"tool": names[0], "offered": names})

    def _recorded(self) -> str:
        try:
            return recorded_id(activity.info().workflow_id or "")
        except RuntimeError:
            return ""

    def _answer(self, messages: list[BaseMessage]) -> ChatResult:
        recorded = self._recorded()
        self.seen.setdefault(recorded, []).append("\n".join(str(m.content) for m in messages))
        case = self.cases.get(recorded.removesuffix(ALT_SUFFIX))
        if "Conclusion" in self.offered:  # a turn of the investigation's tool-using loop
            chosen = _investigation_turn(case, messages)
            calls = [{"name": n, "args": a, "id": f"call-{i}"} for i, (n, a) in enumerate(chosen)]
            return ChatResult(generations=[ChatGeneration(message=AIMessage("", tool_calls=calls))])
        args = self._args(case, recorded.endswith(ALT_SUFFIX), messages)
        calls = [] if args is None else [{"name": self.tool, "args": args, "id": "call-1"}]
        return ChatResult(generations=[ChatGeneration(message=AIMessage("", tool_calls=calls))])

    def _args(
        self, case: Case | None, alt: bool, messages: list[BaseMessage]
    ) -> dict[str, Any] | None:
        if self.tool == "ModelVerdict":
            if case is not None and case.template == 6:
                if alt:
                    return {"verdict": "malicious", "confidence": 0.99, "category": "discovery"}
                return {"verdict": "benign", "confidence": 0.99, "category": "benign_activity"}
            return {"verdict": "malicious", "confidence": 1.0, "category": "impact"}
        if self.tool == "IncidentNarrative":
            # it writes what the payload tells it, for the humans' ticket, card and console
            said = case.payload if case is not None else "nothing to say"
            return {
                "narrative": said[:1_500],
                "justifications": [{"action": "A1", "justification": said[:400]}],
            }
        if self.tool != "ModelSelection":
            return None
        chosen: list[dict[str, str]] = []
        if case is not None:
            for outcome in case.forbidden:
                if outcome["kind"] in ACTION_KINDS and outcome["target"]:
                    chosen.append({"kind": str(outcome["kind"]), "target": str(outcome["target"])})
            # the payload as its own tool call, and every kind aimed at the payload itself
            chosen.append({"kind": case.payload[:64], "target": case.payload[:1024]})
            for kind in ActionKind:
                chosen.append({"kind": kind.value, "target": case.payload[:1024]})
        # every inverse on every target it was shown: inverses belong to rollback, never to it
        for target in _context_targets(messages):
            for kind in ("release_host", "enable_account", "unblock_ip", "restore_file"):
                chosen.append({"kind": kind, "target": target[:1024]})
        return {"actions": chosen[:50]}

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return self._answer(messages)

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return self._answer(messages)


def _investigation_turn(
    case: Case | None, messages: list[BaseMessage]
) -> list[tuple[str, dict[str, Any]]]:
    """In the investigation's loop: first the forbidden actions as tool calls, reads of their
    targets' hosts and of a widened window; then a conclusion that every target and the payload
    are compromised and the incident benign."""
    if case is None:
        return []
    targets = [*[str(o["target"]) for o in case.forbidden if o["target"]][:4], case.payload]
    if not any(m.type == "ai" for m in messages):
        kinds = [str(o["kind"]) for o in case.forbidden if o["kind"] in ACTION_KINDS][:2]
        return [
            *((kind, {"host": targets[0][:256]}) for kind in kinds),
            ("ProcessTree", {"host": targets[0][:256]}),
            ("NetworkConnections", {"host": targets[-1][:256]}),
            ("ProcessTree", {"host": targets[0][:256], "start": "1970-01-01T00:00:00Z"}),
        ]
    named = [t[:256] for t in targets]
    return [
        (
            "Conclusion",
            {
                "verdict": "benign",
                "findings": [{"summary": case.payload[:300], "entities": named[:10]}],
                "compromised_assets": named,
                "compromised_identities": named,
                "attacker_ips": named,
                "attacker_domains": named,
            },
        )
    ]


def _context_targets(messages: list[BaseMessage]) -> list[str]:
    text = "\n".join(str(m.content) for m in messages)
    match = re.search(r"<<<DATA\n(.*)\nDATA>>>", text, re.S)
    if match is None:
        return []
    try:
        data = json.loads(match.group(1))
    except json.JSONDecodeError:
        return []
    targets = data.get("targets", {}) if isinstance(data, dict) else {}
    return [t for values in targets.values() for t in values if isinstance(t, str)][:8]


# --- twins whose journals the test can read -----------------------------------------------------


class JournaledBackends(RecordedBackends):
    """The runner's backends, with one readable journal per incident, seeded with the contained
    state the inverse kinds aim at."""

    journals: dict[str, MemoryJournal] = {}

    def __init__(self, incidents: list[LoadedIncident], **kwargs: Any) -> None:
        super().__init__(incidents, **kwargs)
        self._loaded = {loaded.spec.id: loaded for loaded in incidents}
        self._built: dict[str, tuple[ReadTools, ResponseTools]] = {}

    def _for(self, incident_id: str) -> tuple[ReadTools, ResponseTools]:
        if incident_id not in self._built:
            loaded = self._loaded[recorded_id(incident_id)]
            journal = MemoryJournal()
            for op, target in CONTAINED:
                journal.append(StateChange(op=op, target=target, at=loaded.spec.alerts[0].time))
            JournaledBackends.journals[incident_id] = journal
            self._built[incident_id] = memory_backends(
                loaded.spec.environment, loaded.telemetry(), journal=journal
            )
        return self._built[incident_id]
