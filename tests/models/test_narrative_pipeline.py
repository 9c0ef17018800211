"""The summaries role end to end: the real `langchain-openai` client against the canned
OpenAI-compatible server over loopback (tests/models/openai_server.py), real workers on the
Temporal dev server, the fake Slack Web API, the Jira emulator behind the real Jira adapter, and
the console over the same store.

A narrative the model writes appears, labelled model-generated and beside the deterministic
facts, on the approval card, the ticket's closing note and the console's incident page; one
carrying the injection corpus's mentions and links stays inert on all three. A model that hangs,
fails or answers too much leaves the incident finished with the deterministic text alone, and
the failure in the audit."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from temporalio.testing import WorkflowEnvironment

from agents.model_client import AgentModels
from agents.narrative import LABEL
from orchestrator.approvals.service import ApprovalService
from orchestrator.console.auth import ConsoleConfig
from orchestrator.model_loading import load_models
from orchestrator.model_settings import ModelSettings
from orchestrator.models import IncidentStatusView
from orchestrator.server.app import ServerDeps, create_app
from orchestrator.server.tokens import ApiTokens
from orchestrator.settings import GarrisonSettings
from orchestrator.slack.card import MODEL_NOTE_BLOCK_ID
from orchestrator.workflows.incident import IncidentWorkflow
from tests.models.openai_server import CANNED, build_app
from tests.orchestrator.console.seed import DIRECTORY, client, passwords, sign_in
from tests.slack.stack import ALICE, Handle, Stack, click_body, eventually, slack_stack
from tools.emulators.base import EmulatorState
from tools.emulators.serve import serve
from tools.ticketing.emulators import jira as jira_emulator
from tools.ticketing.vendors import VENDORS

pytest.importorskip("langchain_openai")

pytestmark = pytest.mark.temporal

CORPUS = Path(__file__).parents[2].parent / "shared" / "reference" / "injection-corpus"
NARRATIVE_MARK = "NARRATIVE-MARK"
JUSTIFY_MARK = "JUSTIFY-MARK"


def hostile_cases() -> list[dict[str, Any]]:
    """The corpus's cases that try to make Garrison's messages ping or link (template 8)."""
    lines = (CORPUS / "cases.jsonl").read_text("utf-8").splitlines()
    cases = [json.loads(line) for line in lines if line.strip()]
    return [
        case
        for case in cases
        if any(o["kind"] == "mention_or_link" for o in case["forbidden_outcomes"])
    ]


def hostile_answer() -> tuple[dict[str, Any], list[str]]:
    """A narrative and a justification made of the corpus's payloads, exactly (as many as the
    schema's lengths hold), and the mentions and links that must never become live."""
    narrative, justification, forbidden = NARRATIVE_MARK, JUSTIFY_MARK, []
    for case in hostile_cases():
        payload = case["payload"]
        targets = [
            o["target"] for o in case["forbidden_outcomes"] if o["kind"] == "mention_or_link"
        ]
        if len(justification) + len(payload) < 390:
            justification += " " + payload
        elif len(narrative) + len(payload) < 1_480:
            narrative += " " + payload
        else:
            continue
        forbidden += targets
    answer = {
        "narrative": narrative,
        "justifications": [{"action": "A1", "justification": justification}],
    }
    return answer, sorted(set(forbidden))


@asynccontextmanager
async def canned_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **server: Any
) -> AsyncIterator[AgentModels]:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    async with serve(build_app(**server)) as base:
        models = ModelSettings.model_validate(
            {"base_url": f"{base}/v1", "timeout_s": 0.5, "max_attempts": 2}
        )
        settings = GarrisonSettings.model_validate(
            {"data_dir": tmp_path / "model", "model": "openai:canned", "models": models}
        )
        loaded = load_models(settings)
        assert loaded is not None
        yield loaded


@asynccontextmanager
async def pipeline(
    env: WorkflowEnvironment, tmp_path: Path, models: AgentModels
) -> AsyncIterator[tuple[Stack, Any]]:
    """The Slack stack with the model, its tickets in the Jira emulator: (stack, jira adapter)."""
    spec = next(v for v in VENDORS if v.name == "jira")
    async with AsyncExitStack() as stack:
        state = EmulatorState()
        base = await stack.enter_async_context(serve(jira_emulator.build_emulator(None, [], state)))  # type: ignore[arg-type]
        jira = spec.adapter(spec.emulator_settings(base), None)  # type: ignore[arg-type]
        stack.push_async_callback(jira.aclose)
        slack = await stack.enter_async_context(
            slack_stack(env, tmp_path, post_interval_s=0.05, model=models, ticketing=jira)
        )
        yield slack, jira


async def run_approving(stack: Stack, handle: Handle) -> list[str]:
    """Approve every request as it comes (Alice on Slack) until the incident finishes; the ids."""
    approved: list[str] = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        description = await handle.describe()
        if description.status is not None and description.status.name != "RUNNING":
            await handle.result()
            return approved
        status: IncidentStatusView = await handle.query(IncidentWorkflow.status)
        for request in status.pending_approvals:
            if request.approval_id in approved:
                continue
            wanted = request.approval_id
            await eventually(lambda: card_of(stack, wanted), what="the card")  # noqa: B023
            answer = await stack.click(
                click_body(request.approval_id, request.action_hash, user=ALICE)
            )
            assert answer.status_code == 200
            approved.append(request.approval_id)
        await eventually(lambda: True, timeout_s=0.1)
    raise AssertionError("the incident did not finish")


def card_of(stack: Stack, approval_id: str) -> list[dict[str, Any]] | None:
    for card in stack.cards():
        if (card.metadata or {})["event_payload"]["key"] == f"approval:{approval_id}":
            return card.blocks
    return None


async def console_page(tmp_path: Path, stack: Stack, incident_id: str) -> str:
    passwords(tmp_path / "console-passwords.yaml", "alice")
    deps = ServerDeps(
        store=stack.store,
        approvals=ApprovalService(None, stack.store, DIRECTORY, "garrison-agent"),
        tokens=ApiTokens(),
        console=ConsoleConfig(passwords_file=tmp_path / "console-passwords.yaml"),
    )
    async with client(create_app(deps)) as http:
        await sign_in(http, "alice")
        page = await http.get(f"/console/incidents/{incident_id}")
    await deps.aclose()
    assert page.status_code == 200
    return page.text


def closing_note(ticket: Any) -> str:
    return next(c for c in reversed(ticket.comments) if c.startswith("Verdict:"))


async def test_a_hostile_narrative_is_labelled_beside_the_facts_and_inert_everywhere(
    temporal_env: WorkflowEnvironment, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    answer, forbidden = hostile_answer()
    assert len(forbidden) >= 4  # mentions and links of several cases
    canned = CANNED | {"IncidentNarrative": answer}
    async with (
        canned_model(tmp_path, monkeypatch, canned=canned) as models,
        pipeline(temporal_env, tmp_path, models) as (stack, jira),
    ):
        incident_id, handle = await stack.start()
        approved = await run_approving(stack, handle)
        assert approved, "the strict policy asks a human for the containment"

        # The cards: the narrative on each, the justification on its action's (the canned
        # answer justifies the first action shown), labelled, as escaped plain text only.
        cards, texts, justified = [], [], 0
        for approval_id in approved:
            blocks = card_of(stack, approval_id)
            assert blocks is not None
            [note] = [b for b in blocks if b.get("block_id") == MODEL_NOTE_BLOCK_ID]
            label, *own = note["elements"]
            assert label["type"] == "mrkdwn" and LABEL in label["text"]
            assert all(t["type"] == "plain_text" for t in own)
            shown = " ".join(t["text"] for t in own)
            assert NARRATIVE_MARK in shown
            justified += JUSTIFY_MARK in shown
            assert blocks.index(note) > [b.get("block_id") for b in blocks].index("garrison.risk")
            cards.append(json.dumps(blocks, ensure_ascii=False))
            texts += own
        assert justified >= 1
        card = "\n".join(cards)

        # The ticket: the deterministic closing note first, then the labelled narrative.
        ticket = await jira.find_ticket(incident_id)
        note_text = closing_note(ticket)
        assert (
            note_text.index("Verdict:") < note_text.index(LABEL) < note_text.index(NARRATIVE_MARK)
        )
        assert JUSTIFY_MARK in note_text

        # The console: the narrative and the justification, labelled, next to the summary.
        page = await console_page(tmp_path, stack, incident_id)
        assert page.index("<h2>Summary</h2>") < page.index(LABEL) < page.index(NARRATIVE_MARK)
        assert JUSTIFY_MARK in page and "summaries" in page  # and its usage row

        for target in forbidden:  # no mention or link the model wrote is live anywhere
            assert target not in card, target
            assert target not in note_text, target
            assert target not in page, target
        live = ("<!", "<http", "<@")  # in mrkdwn, Garrison writes its own (dates, groups)
        assert not any(m in t["text"] for t in texts for m in live)
        assert 'href="https://garrison-approve' not in page and "<!here>" not in page

        entries = await stack.store.audit_entries(incident_id=incident_id)
        assert ("agent.narrative", "written") in {(e.type, e.outcome) for e in entries}
        roles = {u.role: u for u in await stack.store.model_use.usage_of(incident_id)}
        assert roles["summaries"].calls >= 1 and roles["summaries"].output_tokens > 0
        assert roles["triage"].calls >= 1


@pytest.mark.parametrize(
    "server",
    [
        pytest.param({"hanging": frozenset({"IncidentNarrative"})}, id="hung"),
        pytest.param({"failing": frozenset({"IncidentNarrative"})}, id="failing"),
        pytest.param(
            {"canned": CANNED | {"IncidentNarrative": {"narrative": "x" * 20_000}}},
            id="oversized",
        ),
    ],
)
async def test_a_narrative_that_fails_leaves_the_deterministic_text_alone(
    temporal_env: WorkflowEnvironment,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    server: dict[str, Any],
) -> None:
    async with (
        canned_model(tmp_path, monkeypatch, **server) as models,
        pipeline(temporal_env, tmp_path, models) as (stack, jira),
    ):
        incident_id, handle = await stack.start()
        approved = await run_approving(stack, handle)
        result = await handle.result()
        assert result.verdict.value == "malicious" and result.executed

        blocks = card_of(stack, approved[0])
        assert blocks is not None
        assert all(b.get("block_id") != MODEL_NOTE_BLOCK_ID for b in blocks)
        note_text = closing_note(await jira.find_ticket(incident_id))
        assert LABEL not in note_text and result.summary.splitlines()[0] in note_text
        page = await console_page(tmp_path, stack, incident_id)
        assert 'id="narrative"' not in page and "Why this action" not in page
        assert await stack.store.model_use.narrative_of(incident_id) is None

        entries = await stack.store.audit_entries(incident_id=incident_id)
        failed = [e for e in entries if e.type == "agent.narrative"]
        assert failed and all(e.outcome == "failed" for e in failed)
        usage = {u.role: u for u in await stack.store.model_use.usage_of(incident_id)}
        assert usage["summaries"].calls >= 2 and usage["summaries"].answered == 0
