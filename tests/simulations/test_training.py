"""Training mode: a session over five recorded incidents replayed through the real pipeline (the
Temporal dev server, the agents, the policy, `ApprovalService`), with a test playing the analyst
from what each request shows; the scores and the debrief are kept in the store and shown in the
console (in a real browser); the CLI runs a session with answers typed at its prompt.

The scoring rules themselves are checked on small hand-made cases first."""

from __future__ import annotations

import json
import uuid
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from temporalio.testing import WorkflowEnvironment
from typer.testing import CliRunner

from orchestrator.approvals.service import ApprovalService
from orchestrator.cli import app
from orchestrator.composition import open_store
from orchestrator.console.auth import ConsoleConfig
from orchestrator.models import DecisionKind
from orchestrator.server.app import ServerDeps, create_app
from orchestrator.server.tokens import ApiTokens
from orchestrator.settings import GarrisonSettings, TemporalSettings
from orchestrator.store.training_sessions import TRAINING_SCHEMA
from simulations.loader import load_all
from simulations.scorer import ExecutedAction, IncidentRun, score
from simulations.spec import ExpectedAction, Truth
from simulations.training.scoring import score_incident, score_session
from simulations.training.session import (
    TrainingError,
    TrainingOptions,
    pick,
    run_training,
    summary_of,
)
from simulations.training.trainee import DecisionPrompt, TraineeDecision
from tests.orchestrator.console.browser import SCREENSHOTS, launch_args, require_browser
from tests.orchestrator.console.seed import (
    DIRECTORY,
    NOW,
    PASSWORD,
    client,
    console,
    passwords,
    sign_in,
)
from tools.actions import ActionKind
from tools.emulators.serve import serve
from tools.models import Category, Verdict

ROOT = Path(__file__).parents[2]
CORPUS = ROOT / "simulations" / "incidents"
# Four recorded incidents whose agents ask for approval (one to three requests each), and a
# benign one where nothing is asked: the trainee meets both kinds of shift.
SESSION = (
    "otrf-empire-dcsync-ws5",
    "otrf-empire-smbexec-ws5-ws6",
    "otrf-dcom-excel4macro-ws6",
    "otrf-lsass-comsvcs-prd01",
    "otrf-dsc-mordordc-0722",
)


def truth() -> Truth:
    return Truth(
        verdict=Verdict.MALICIOUS,
        category=Category.CREDENTIAL_ACCESS,
        techniques=["T1003.001"],
        expected_actions=[
            ExpectedAction(kind=ActionKind.ISOLATE_HOST, target="PRD01"),
            ExpectedAction(kind=ActionKind.DISABLE_ACCOUNT, target="corp\\ana"),
            ExpectedAction(kind=ActionKind.BLOCK_IP, target="10.0.5.13"),
        ],
        acceptable_actions=[ExpectedAction(kind=ActionKind.RESET_CREDENTIALS, target="corp\\ana")],
        notes="the dump was taken by the payload",
    )


def decision(kind: ActionKind, target: str, answer: DecisionKind | None) -> TraineeDecision:
    return TraineeDecision("inc-1", kind, target, 70, answer, think_s=4.0)


def test_decisions_are_scored_against_the_truth_and_the_agents_against_it_too() -> None:
    run = IncidentRun(
        id="inc-1",
        verdict=Verdict.MALICIOUS,
        executed_actions=[
            ExecutedAction(
                kind=ActionKind.ISOLATE_HOST, target="prd01.corp", risk=70, executed_at_s=3
            ),
            ExecutedAction(
                kind=ActionKind.KILL_PROCESS, target="PRD01:4242", risk=20, executed_at_s=2
            ),
        ],
    )
    card = score([run], {"inc-1": truth()}, threshold=50, elapsed_s=1.0)
    decisions = [
        decision(ActionKind.ISOLATE_HOST, "prd01.corp", DecisionKind.APPROVE),  # right
        decision(ActionKind.DISABLE_ACCOUNT, "ana", DecisionKind.DENY),  # a miss
        decision(ActionKind.BLOCK_DOMAIN, "cdn.example", DecisionKind.APPROVE),  # over-response
        decision(ActionKind.REVOKE_SESSIONS, "corp\\ana", None),  # not wanted, let expire: right
    ]
    scored = score_incident("Dump on PRD01", truth(), card.per_incident[0], decisions)
    assert [d.right for d in scored.decisions] == [True, False, False, True]
    assert (scored.right, scored.missed, scored.over_response) == (2, 1, 1)
    # The agents proposed isolate and disable (and a block of a domain), never the block_ip.
    assert (scored.expected_actions, scored.agents_proposed_expected, scored.contained) == (3, 2, 1)
    assert scored.agents_unasked_over_response == 1  # the kill nobody was asked about
    text = "\n".join(scored.debrief)
    assert "You denied disable_account ana (risk 70) after 4.0 s: a miss" in text
    assert "over-response, the truth does not call for it" in text
    assert "Expected but never proposed by the agents: block_ip 10.0.5.13" in text
    assert "The agents executed kill_process PRD01:4242 without asking (not expected" in text
    assert text.endswith("Why: the dump was taken by the payload")
    total = score_session([scored])
    assert (total.decisions, total.right, total.accuracy) == (4, 2, 0.5)
    assert (total.containment_recall, total.agents_recall) == (0.333, 0.667)
    assert total.median_think_s == 4.0


def test_a_session_names_unknown_incidents_and_draws_reproducibly() -> None:
    loaded = load_all([CORPUS / name for name in SESSION[:3]]).incidents
    with pytest.raises(TrainingError, match="no recorded incident nope in the corpus"):
        pick(loaded, TrainingOptions(analyst="a", incidents=("nope",)))
    first = pick(loaded, TrainingOptions(analyst="a", count=2, seed=7))
    again = pick(loaded, TrainingOptions(analyst="a", count=2, seed=7))
    assert [i.spec.id for i in first] == [i.spec.id for i in again] and len(first) == 2


def _settings(env: WorkflowEnvironment, data: Path) -> GarrisonSettings:
    return GarrisonSettings(
        data_dir=data,
        temporal=TemporalSettings(
            address=env.client.service_client.config.target_host,
            task_queue_prefix=f"train-{uuid.uuid4().hex[:8]}",
        ),
    )


@dataclass
class Session:
    settings: GarrisonSettings
    report: dict[str, Any]
    prompts: list[DecisionPrompt]


@pytest.fixture(scope="module")
async def session(
    temporal_env: WorkflowEnvironment, tmp_path_factory: pytest.TempPathFactory
) -> Session:
    """Five incidents; the analyst contains hosts and processes, and refuses to touch accounts
    (a habit the debrief should call out), deciding from what the request shows."""
    settings = _settings(temporal_env, tmp_path_factory.mktemp("training"))
    prompts: list[DecisionPrompt] = []

    async def analyst(prompt: DecisionPrompt) -> DecisionKind | None:
        prompts.append(prompt)
        assert prompt.alerts and prompt.rationale  # what the agents saw and said, before deciding
        if prompt.kind in (ActionKind.DISABLE_ACCOUNT, ActionKind.RESET_CREDENTIALS):
            return DecisionKind.DENY
        return DecisionKind.APPROVE

    loaded = load_all([CORPUS / name for name in SESSION])
    assert loaded.problems == []
    options = TrainingOptions(analyst="trainee-ana", incidents=SESSION)
    report = await run_training(loaded.incidents, settings, options, analyst)
    return Session(settings, report, prompts)


@pytest.mark.temporal
@pytest.mark.simulation
async def test_a_five_incident_session_is_scored_debriefed_and_kept(session: Session) -> None:
    report = session.report
    assert [i["recorded_id"] for i in report["incidents"]] == list(SESSION)
    decided = [d for i in report["incidents"] for d in i["decisions"]]
    assert len(decided) == len(session.prompts) >= 5
    refused = [d for d in decided if d["kind"] in ("disable_account", "reset_credentials")]
    assert refused and all(d["decision"] == "deny" for d in refused)
    # Every refused account the truth expected is a miss, and the debrief says so.
    expected_refused = [d for d in refused if d["expected"]]
    assert report["score"]["missed"] == len(expected_refused) >= 1
    debriefs = "\n".join(line for i in report["incidents"] for line in i["debrief"])
    assert "a miss, the truth expects it" in debriefs
    assert debriefs.count("Truth: malicious") == len(SESSION) - 1
    assert "Truth: benign" in debriefs
    assert report["score"]["containment_recall"] < 1.0  # the accounts stayed enabled
    store = await open_store(session.settings)
    try:
        kept = await store.training_sessions.get(report["id"])
        listed = await store.training_sessions.list("trainee-ana")
    finally:
        await store.close()
    assert kept is not None and kept.report == report
    assert [s.id for s in listed] == [report["id"]]
    assert kept.missed == report["score"]["missed"] and kept.decisions == len(decided)


@pytest.mark.temporal
@pytest.mark.simulation
@pytest.mark.browser
async def test_the_session_and_its_debrief_are_shown_in_the_console(session: Session) -> None:
    require_browser()
    from playwright.async_api import async_playwright

    async with AsyncExitStack() as stack:
        store = await open_store(session.settings)
        stack.push_async_callback(store.close)
        console = ConsoleConfig(
            passwords_file=passwords(session.settings.data_dir / "pw.yaml", "alice"),
            cookie_secure=False,
        )
        deps = ServerDeps(
            store=store,
            approvals=ApprovalService(None, store, DIRECTORY, "garrison-agent"),
            tokens=ApiTokens(),
            console=console,
        )
        url = await stack.enter_async_context(serve(create_app(deps)))
        stack.push_async_callback(deps.aclose)
        playwright = await stack.enter_async_context(async_playwright())
        browser = await playwright.chromium.launch(**launch_args())
        stack.push_async_callback(browser.close)
        page = await (await browser.new_context(base_url=url)).new_page()
        await page.goto("/console/training")
        await page.fill("input[name=user]", "alice")
        await page.fill("input[name=password]", PASSWORD)
        await page.click("button[type=submit]")
        await page.goto("/console/training")
        row = page.locator("#training-sessions tbody tr").first
        assert "trainee-ana" in await row.inner_text()
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=SCREENSHOTS / "10-training-sessions.png", full_page=True)
        await row.locator("a").first.click()
        await page.wait_for_url(f"**/console/training/{session.report['id']}")
        text = await page.locator("main").inner_text()
        assert "a miss, the truth expects it" in text
        for recorded in SESSION:
            assert recorded in text
        assert await page.locator("section.debrief").count() == len(SESSION)
        await page.screenshot(path=SCREENSHOTS / "11-training-debrief.png", full_page=True)


@pytest.mark.temporal
@pytest.mark.simulation
def test_the_cli_runs_a_session_from_answers_typed_at_its_prompt(
    temporal_env: WorkflowEnvironment, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GARRISON_DATA_DIR", str(tmp_path))
    monkeypatch.setenv(
        "GARRISON_TEMPORAL_ADDRESS", temporal_env.client.service_client.config.target_host
    )
    monkeypatch.setenv("GARRISON_TEMPORAL_TASK_QUEUE_PREFIX", f"cli-{uuid.uuid4().hex[:6]}")
    runner = CliRunner()
    report = tmp_path / "session.json"
    args = ["train", "--analyst", "bo", "--incident", "otrf-lsass-comsvcs-prd01"]
    args += ["--corpus", str(CORPUS), "--report-json", str(report)]
    # "maybe" is not an answer: asked again; then every request is denied.
    result = runner.invoke(app, args, input="maybe\n" + "d\n" * 10)
    assert result.exit_code == 0, result.output
    assert "PROPOSED" in result.output and "answer a, d or s" in result.output
    assert "a miss, the truth expects it" in result.output
    history = runner.invoke(app, ["train", "history", "--analyst", "bo"])
    assert history.exit_code == 0 and "bo" in history.output
    session_id = json.loads(report.read_text())["id"]
    assert session_id in history.output
    shown = runner.invoke(app, ["train", "show", session_id])
    assert shown.exit_code == 0 and "Truth: malicious" in shown.output
    missing = runner.invoke(app, ["train", "show", "nope"])
    assert missing.exit_code == 2 and "no training session nope" in missing.output
    refused = runner.invoke(app, ["train"])
    assert refused.exit_code == 2 and "--analyst NAME is required" in refused.output


async def test_a_kept_debrief_quoting_hostile_text_stays_text_in_the_console(
    tmp_path: Path,
) -> None:
    hostile = '<script>document.title="pwned"</script>'
    scored = score_incident(
        hostile,
        truth().model_copy(update={"notes": hostile}),
        score(
            [IncidentRun(id="inc-1", verdict=Verdict.MALICIOUS)],
            {"inc-1": truth()},
            threshold=50,
            elapsed_s=1.0,
        ).per_incident[0],
        [decision(ActionKind.BLOCK_DOMAIN, hostile, DecisionKind.APPROVE)],
    )
    total = score_session([scored])
    report = {
        "schema": TRAINING_SCHEMA,
        "id": "s1",
        "analyst": hostile,
        "score": total.model_dump(mode="json"),
        "incidents": [scored.model_dump(mode="json")],
    }
    summary = summary_of("s1", hostile, NOW, NOW, total)
    passwords(tmp_path / "console-passwords.yaml", "alice")
    async with console(tmp_path) as c, client(c.app) as http:
        assert (await http.get("/console/training")).status_code == 303  # signed out
        await c.store.training_sessions.keep(summary, report)
        with pytest.raises(ValueError, match=r"not a garrison\.training/1 report"):
            await c.store.training_sessions.keep(summary, {"schema": "x"})
        await sign_in(http, "alice")
        for path in ("/console/training", "/console/training/s1"):
            page = await http.get(path)
            assert page.status_code == 200
            assert "<script>document.title" not in page.text
            assert "&lt;script&gt;document.title=" in page.text
        assert (await http.get("/console/training/nope")).status_code == 404


@pytest.mark.temporal
@pytest.mark.simulation
async def test_one_failed_incident_is_reported_and_the_run_goes_on(
    temporal_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    """An analyst that breaks mid-incident (as an RPC timeout to an Update would) fails that
    incident only: the other is scored, and the failure is named in the scorecard."""
    from simulations.analyst import Answer
    from simulations.runner import SimulationOptions, run_simulation

    class Broken:
        async def answer(self, incident_id: str, request: object) -> Answer:
            raise RuntimeError("the approval Update timed out")

    class Approving:
        async def answer(self, incident_id: str, request: object) -> Answer:
            return Answer(DecisionKind.APPROVE, 60.0)

    names = ("otrf-lsass-comsvcs-prd01", "otrf-dcom-excel4macro-ws6")
    loaded = load_all([CORPUS / name for name in names]).incidents
    options = SimulationOptions(
        analyst_for=lambda one, _id, _store: Broken() if one.spec.id == names[0] else Approving(),
    )
    card = await run_simulation(loaded, _settings(temporal_env, tmp_path), options)
    rows = {row.id: row for row in card.per_incident}
    assert rows[names[0]].verdict is None
    assert rows[names[0]].error == "driver failed: RuntimeError: the approval Update timed out"
    assert rows[names[1]].verdict is Verdict.MALICIOUS and rows[names[1]].error is None
    assert rows[names[1]].executed_actions
