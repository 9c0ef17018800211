"""The incident page's playbook progress, read from the playbook's LangGraph checkpoints on the
store's database: the steps done, the one paused on proposals waiting for decisions, then the
pass finished with the branch it did not take shown as not run."""

from __future__ import annotations

from pathlib import Path

from agents.deps import AgentDeps
from agents.models import ActionOutcome, OutcomeStatus
from agents.triage.graph import run_triage
from orchestrator.activities.routing import route_triage
from orchestrator.composition import checkpoint_types
from orchestrator.console.playbook_progress import (
    NOT_RUN,
    TO_COME,
    WAITING,
    ProgressReader,
    steps_of,
)
from orchestrator.store.checkpoints import langgraph_checkpointer
from playbooks.engine import PlaybookStart, step_playbook
from playbooks.registry import get_playbook
from tests.agents.fakes import read_tools
from tests.agents.scenarios import lsass_alerts, lsass_edr, triage_input
from tests.orchestrator.console.seed import client, console, passwords, seed_incident, sign_in


def progress_section(html: str) -> str:
    return html.split("<h2>Playbook progress</h2>", 1)[1].split("<h2>", 1)[0]


async def test_the_incident_page_follows_the_playbooks_steps(tmp_path: Path) -> None:
    passwords(tmp_path / "console-passwords.yaml", "alice")
    url = f"sqlite:///{tmp_path / 'g.db'}"
    async with console(tmp_path) as c, client(c.app) as http:
        c.deps.console.progress = ProgressReader(url)
        await seed_incident(c.store, "inc-1")
        await sign_in(http, "alice")
        before = progress_section((await http.get("/console/incidents/inc-1")).text)
        assert "has not started yet" in before

        deps = AgentDeps(tools=read_tools(lsass_edr()))
        alerts = lsass_alerts()
        # routed as the triage activity does: the agent names a category, the routing a playbook
        triage = await route_triage(
            await run_triage(deps, triage_input(alerts)), deps.tools.inventory
        )
        playbook = get_playbook(triage.playbook_id)
        async with langgraph_checkpointer(url, checkpoint_types()) as saver:
            start = PlaybookStart(incident_id="inc-1", alerts=alerts, triage=triage)
            first = await step_playbook(playbook, deps, saver, thread_id="inc-1", start=start)
            paused = progress_section((await http.get("/console/incidents/inc-1")).text)
            assert playbook.title in paused and f"{WAITING}</span>;" in paused
            assert '<li class="step-done">investigate' in paused
            assert '<li class="step-waiting-for-decisions">contain' in paused
            assert '<li class="step-to-come">summarise' in paused

            executed = [
                ActionOutcome(action=p.action, status=OutcomeStatus.EXECUTED, risk=40)
                for p in first.proposals
            ]
            await step_playbook(playbook, deps, saver, thread_id="inc-1", resume=executed)
        done = progress_section((await http.get("/console/incidents/inc-1")).text)
        assert "finished</span>" in done and f"{len(executed)} proposal(s) decided" in done
        assert '<li class="step-done">summarise' in done
        assert '<li class="step-not-run">lesser_containment' in done


def test_steps_are_done_next_to_come_or_not_run() -> None:
    steps = ["a", "b", "c"]
    assert steps_of(steps, {"a"}, {"b"}, waiting=False) == [
        ("a", "done"),
        ("b", "next"),
        ("c", TO_COME),
    ]
    assert steps_of(steps, {"a", "c"}, set(), waiting=False)[1] == ("b", NOT_RUN)
    assert steps_of(steps, {"a", "b"}, {"b"}, waiting=True)[1] == ("b", WAITING)  # a loop


async def test_unreadable_checkpoints_are_said_on_the_page_not_a_500(tmp_path: Path) -> None:
    passwords(tmp_path / "console-passwords.yaml", "alice")
    async with console(tmp_path) as c, client(c.app) as http:
        c.deps.console.progress = ProgressReader(f"sqlite:///{tmp_path / 'no' / 'such.db'}")
        await seed_incident(c.store, "inc-1")
        await sign_in(http, "alice")
        page = await http.get("/console/incidents/inc-1")
        assert page.status_code == 200
        assert "checkpoints could not be read" in progress_section(page.text)
