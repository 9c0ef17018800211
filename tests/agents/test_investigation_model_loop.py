"""The investigation model's tool-using loop (agents/investigation/model_loop.py): its questions
are answered from the incident's own telemetry and kept in the report's evidence; a step budget
stops a model that never stops asking; a tool it was not given, arguments outside the schema and
a host outside the scope are refused and audited; the rules' report is never changed; a recorded
loop replays offline to the same evidence, and a replay that misses names the call."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult

from agents.deps import AgentDeps
from agents.investigation.graph import run_investigation
from agents.model_client import ModelClient, ModelLimits, Tape
from agents.models import InvestigationInput, InvestigationReport
from agents.triage.graph import run_triage
from tests.agents.fakes import T0, FakeEdr, read_tools
from tests.agents.scenarios import lsass_alerts, lsass_edr, triage_input
from tests.agents.scripted_model import ConversationModel
from tools.results import LogonEvent

MODEL_FIELDS = {"model_tool_calls", "model_findings", "model_entities", "model_disagreements"}


def _edr() -> FakeEdr:
    edr = lsass_edr()
    edr.logon_events.append(
        LogonEvent(time=T0 - timedelta(minutes=4), host="PRD01", user="PANDALAB\\svc.backup",
                   logon_type=3, src_ip="172.18.39.9")
    )  # fmt: skip
    return edr


async def investigate(
    client: ModelClient | None, edr: FakeEdr | None = None
) -> tuple[InvestigationReport, InvestigationReport]:
    """The rules' report, and the report with `client` as the investigation's model."""
    edr = edr or _edr()
    alerts = lsass_alerts()
    triage = await run_triage(AgentDeps(tools=read_tools(edr)), triage_input(alerts))
    request = InvestigationInput(incident_id="inc-1", alerts=alerts, triage=triage)
    rules = await run_investigation(AgentDeps(tools=read_tools(edr)), request)
    if client is None:
        return rules, rules
    deps = AgentDeps(tools=read_tools(edr), investigator=client)
    return rules, await run_investigation(deps, request)


def client(model: ConversationModel | None, tape: Tape | None = None, **limits: Any) -> ModelClient:
    return ModelClient(
        chat=model, role="investigation", name="test:loop", limits=ModelLimits(**limits), tape=tape
    )


def recorded(folder: Path) -> list[Path]:
    return list(folder.glob("*.json"))


def floor(report: InvestigationReport) -> dict[str, Any]:
    return report.model_dump(exclude=MODEL_FIELDS)


def answered(messages: list[BaseMessage]) -> int:
    return sum(1 for m in messages if m.type == "tool")


def investigator(messages: list[BaseMessage], offered: list[str]) -> list[tuple[str, object]]:
    """Reads the process tree, connections and logons of PRD01, then concludes: one finding on
    entities the answers showed, one entity from them, one from nowhere."""
    if not answered(messages):
        return [
            ("ProcessTree", {"host": "PRD01", "pid": 4242}),
            ("NetworkConnections", {"host": "prd01.pandalab.com"}),
            ("Logons", {"host": "PRD01"}),
        ]
    return [
        (
            "Conclusion",
            {
                "verdict": "malicious",
                "findings": [
                    {"summary": "invoice.exe called out", "entities": ["PRD01", "10.0.5.13"]},
                    {"summary": "the file server is next", "entities": ["FS01"]},
                ],
                "compromised_identities": ["pandalab\\svc.backup", "corp\\a.moreau"],
            },
        )
    ]


async def test_the_models_questions_get_the_incidents_telemetry_and_are_kept_as_evidence() -> None:
    model = ConversationModel(turn=investigator)
    loop = client(model)
    rules, report = await investigate(loop)

    assert "ProcessTree" in model.offered and "Conclusion" in model.offered
    assert not {"IsolateHost", "isolate_host", "KillProcess"} & set(model.offered)
    calls = {c.tool: c for c in report.model_tool_calls}
    assert calls["ProcessTree"].outcome == "answered"
    assert (
        "comsvcs.dll" in calls["ProcessTree"].result
        and "invoice.exe" in calls["ProcessTree"].result
    )
    assert "10.0.5.13:443" in calls["NetworkConnections"].result
    assert "svc.backup" in calls["Logons"].result
    assert all(c.generated_by == "model" for c in report.model_tool_calls)
    # the conclusion adds only what the evidence shows, labelled; the rest is refused, on record
    assert report.model_entities.users == ["PANDALAB\\svc.backup"]
    assert [f.summary for f in report.model_findings] == ["model-generated: invoice.exe called out"]
    refused = [
        c for c in report.model_tool_calls if c.tool == "Conclusion" and c.outcome == "refused"
    ]
    assert "corp\\a.moreau" in refused[0].result and "the file server is next" in refused[0].result
    assert floor(report) == floor(rules)  # the rules' report, untouched
    assert loop.ledger.calls == 2


async def test_the_step_budget_stops_a_model_that_never_stops_calling_tools() -> None:
    model = ConversationModel(turn=lambda messages, offered: [("ProcessTree", {"host": "PRD01"})])
    loop = client(model, max_steps=3, max_calls=24)
    rules, report = await investigate(loop)

    assert len(model.calls) == 3 and loop.ledger.calls == 3
    assert report.model_tool_calls[-1].result.startswith("step budget spent (3 turns)")
    assert any("step budget spent" in event for event in loop.ledger.events)
    assert floor(report) == floor(rules)


def _out_of_bounds(messages: list[BaseMessage], offered: list[str]) -> list[tuple[str, object]]:
    if answered(messages):
        return [("Conclusion", {"verdict": "benign"})]
    return [
        ("IsolateHost", {"host": "PRD01"}),  # a write: never given
        ("ProcessTree", {"host": "PRD01", "start": "2001-01-01T00:00:00Z"}),  # no such argument
        ("ProcessTree", {"host": "PRD01", "pid": "the lsass one"}),  # wrong type
        ("NetworkConnections", {"host": "DC01"}),  # outside the incident's hosts
        ("IndicatorReputation", {"kind": "ip", "value": "8.8.8.8"}),  # nowhere in the evidence
        ("ProcessTree", {"host": "PRD01"}),
    ]


async def test_tools_not_given_and_arguments_outside_the_schema_are_refused_and_audited() -> None:
    loop = client(ConversationModel(turn=_out_of_bounds))
    rules, report = await investigate(loop)

    outcomes = [(c.tool, c.outcome, c.result) for c in report.model_tool_calls if c.step == 1]
    assert [o[1] for o in outcomes] == ["refused"] * 5 + ["answered"]
    reasons = [o[2] for o in outcomes[:5]]
    assert reasons[0] == "a tool it was not given: IsolateHost"
    assert reasons[1].startswith("arguments outside the schema") and reasons[2].startswith(
        "arguments outside the schema"
    )
    assert reasons[3] == "host outside the incident's scope"
    assert reasons[4] == "indicator not found in the incident's evidence"
    audited = "\n".join(loop.ledger.events)  # the activity writes these into `agent.model`
    assert "IsolateHost: refused" in audited and "host outside the incident's scope" in audited
    # the disagreement is recorded; the rules' verdict, and everything else of theirs, stands
    assert report.model_disagreements == [
        "investigation: model verdict benign, rules malicious; rules kept"
    ]
    assert floor(report) == floor(rules)


async def test_a_failing_model_leaves_the_rules_report_as_it_is() -> None:
    def broken(messages: list[BaseMessage], offered: list[str]) -> list[tuple[str, object]]:
        raise RuntimeError("provider down")

    loop = client(ConversationModel(turn=broken), max_attempts=2)
    rules, report = await investigate(loop)

    assert report == rules.model_copy(update={"model_tool_calls": []})
    assert loop.ledger.calls == 2
    assert sum("failed: RuntimeError" in event for event in loop.ledger.events) == 2


class HungModel(ConversationModel):
    """A provider that never answers."""

    async def _agenerate(
        self, messages: list[BaseMessage], *args: Any, **kwargs: Any
    ) -> ChatResult:
        await asyncio.sleep(30)
        raise AssertionError("a hung provider answered")


async def test_the_loops_deadline_cuts_a_hung_provider_short() -> None:
    loop = client(HungModel(), timeout_s=10, max_attempts=2, loop_deadline_s=0.5)
    started = time.monotonic()
    rules, report = await investigate(loop)

    assert time.monotonic() - started < 5  # not two attempts of 10 s each
    assert report == rules.model_copy(update={"model_tool_calls": []})
    assert any("deadline passed" in event for event in loop.ledger.events)


class GarbledModel(ConversationModel):
    """Its first reply's arguments do not parse (the provider's client keeps such a call as
    invalid); then it concludes."""

    def _generate(self, messages: list[BaseMessage], *args: Any, **kwargs: Any) -> ChatResult:
        self.calls.append(len(self.calls) + 1)
        if len(self.calls) > 1:
            call = {"name": "Conclusion", "args": {"verdict": "malicious"}, "id": "c-2"}
            message = AIMessage(content="", tool_calls=[call])  # type: ignore[list-item]
        else:
            bad = {"name": "ProcessTree", "args": '{"host": "PRD01",', "id": "c-1", "error": "json"}
            message = AIMessage(content="", invalid_tool_calls=[bad])  # type: ignore[list-item]
        return ChatResult(generations=[ChatGeneration(message=message)])


async def test_unparseable_arguments_are_refused_recorded_and_replayed(tmp_path: Path) -> None:
    loop = client(GarbledModel(), Tape(tmp_path, "record"))
    rules, report = await investigate(loop)

    first = report.model_tool_calls[0]
    assert (first.tool, first.outcome, first.result) == (
        "ProcessTree",
        "refused",
        "tool call with unparseable arguments",
    )
    assert report.model_tool_calls[1].tool == "Conclusion" and loop.ledger.calls == 2
    assert floor(report) == floor(rules)
    _, replayed = await investigate(client(None, Tape(tmp_path, "replay")))
    assert replayed == report


async def test_a_recorded_loop_replays_offline_to_the_same_evidence(tmp_path: Path) -> None:
    live_model = ConversationModel(turn=investigator)
    _, live = await investigate(client(live_model, Tape(tmp_path, "record")))
    assert len(recorded(tmp_path)) == 2

    replay = client(None, Tape(tmp_path, "replay"))
    _, replayed = await investigate(replay)
    assert replayed == live
    assert replay.ledger.calls == 2 and replay.tape is not None and replay.tape.misses == []

    # Other telemetry, other answers: the second turn was never recorded, and says so.
    other = _edr()
    other.logon_events.clear()
    missing = client(None, Tape(tmp_path, "replay"))
    await investigate(missing, other)
    assert missing.tape is not None and len(missing.tape.misses) == 1
    assert missing.tape.misses[0].startswith("investigation/InvestigationStep ")
