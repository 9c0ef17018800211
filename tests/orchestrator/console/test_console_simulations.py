"""The console's simulation pages over runs kept in the store: the list of runs, one run's
scorecard (per incident, by category and by tactic), and its diff against a committed baseline
or another kept run; hostile text in a report stays text, and a baseline is chosen by name only."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from simulations.scorer import ExecutedAction, IncidentRun, score
from simulations.spec import ExpectedAction, Truth
from tests.orchestrator.console.seed import NOW, client, console, passwords, sign_in
from tools.actions import ActionKind
from tools.models import Category, Verdict

HOSTILE = '<script>alert("run")</script>'


def scorecard(isolate: bool = True) -> dict[str, Any]:
    """Two incidents: a host isolated (or not) for a credential theft, a benign discovery."""
    executed = (
        [ExecutedAction(kind=ActionKind.ISOLATE_HOST, target="PRD01", risk=70, executed_at_s=5)]
        if isolate
        else []
    )
    runs = [
        IncidentRun(id="cred-1", verdict=Verdict.MALICIOUS, executed_actions=executed),
        IncidentRun(id=f"disc-{HOSTILE}", verdict=Verdict.MALICIOUS),
    ]
    truths = {
        "cred-1": Truth(
            verdict=Verdict.MALICIOUS,
            category=Category.CREDENTIAL_ACCESS,
            expected_actions=[ExpectedAction(kind=ActionKind.ISOLATE_HOST, target="PRD01")],
        ),
        f"disc-{HOSTILE}": Truth(verdict=Verdict.BENIGN, category=Category.DISCOVERY),
    }
    report = score(runs, truths, threshold=50, elapsed_s=2.0).model_dump(mode="json", by_alias=True)
    group = {
        "incidents": 1,
        "verdict_accuracy": 1.0,
        "containment_recall": 1.0 if isolate else 0.0,
        "containment_precision": 1.0,
        "over_response": 0,
        "unapproved_risky_actions": 0,
    }
    report["breakdown"] = {
        "by_category": {"credential_access": group},
        "by_tactic": {"credential-access": group},
        "by_truth_tactic": {HOSTILE: group},
    }
    return report


async def test_kept_runs_are_listed_and_one_runs_scorecard_is_shown(tmp_path: Path) -> None:
    passwords(tmp_path / "console-passwords.yaml", "alice")
    async with console(tmp_path) as c, client(c.app) as http:
        runs = c.store.simulation_runs
        await runs.keep("r1", NOW - timedelta(hours=1), "simulations/incidents", scorecard())
        await runs.keep("r2", NOW, f"folder {HOSTILE}", scorecard(isolate=False))
        await sign_in(http, "alice")

        listing = await http.get("/console/simulations")
        assert listing.status_code == 200
        assert listing.text.index(">r2</a>") < listing.text.index(">r1</a>")  # newest first
        assert "0.500" in listing.text and "0.000" in listing.text  # r1 accuracy, r2 recall
        assert HOSTILE not in listing.text and "&lt;script&gt;" in listing.text

        one = await http.get("/console/simulations/r1")
        assert one.status_code == 200
        text = one.text
        assert "cred-1" in text and "isolate_host PRD01" in text
        assert "(expected benign)" in text
        assert 'href="/console/incidents/sim-r1--cred-1"' in text  # the run's incident
        for title in ("By category", "By ATT&amp;CK tactic of the alerts", "credential-access"):
            assert title in text
        assert HOSTILE not in text
        assert 'value="run:r2"' in text  # another kept run to diff against

        assert (await http.get("/console/simulations/nope")).status_code == 404
        assert (await http.get("/console/simulations/..%2Fx")).status_code in (404, 422)


async def test_a_run_is_diffed_against_a_committed_baseline_or_another_run(
    tmp_path: Path,
) -> None:
    passwords(tmp_path / "console-passwords.yaml", "alice")
    baselines = tmp_path / "baselines"
    baselines.mkdir()
    (baselines / "subset.json").write_text(json.dumps(scorecard()), encoding="utf-8")
    (tmp_path / "secret.json").write_text(json.dumps(scorecard()), encoding="utf-8")
    async with console(tmp_path) as c, client(c.app) as http:
        c.deps.console.baselines_dir = baselines
        await c.store.simulation_runs.keep("r1", NOW, "a", scorecard())
        await c.store.simulation_runs.keep("r2", NOW, "b", scorecard(isolate=False))
        await sign_in(http, "alice")

        page = await http.get("/console/simulations/r2")
        assert 'value="baseline:subset.json"' in page.text
        worse = await http.get("/console/simulations/r2/diff?against=baseline:subset.json")
        assert worse.status_code == 200
        assert "cred-1: no longer executes isolate_host PRD01" in worse.text
        assert "containment_recall" in worse.text and 'class="worse"' in worse.text
        same = await http.get("/console/simulations/r1/diff?against=run:r1")
        assert same.status_code == 200 and 'id="diff-none"' in same.text
        better = await http.get("/console/simulations/r1/diff?against=run:r2")
        assert "cred-1: now executes isolate_host PRD01" in better.text

        for against in ("baseline:../secret.json", "baseline:secret.json", "run:nope", "x"):
            refused = await http.get("/console/simulations/r1/diff", params={"against": against})
            assert refused.status_code == 404, against
            assert "no difference" not in refused.text.lower()


async def test_simulate_keeps_its_scorecard_in_the_configured_store(tmp_path: Path) -> None:
    from orchestrator.cli_simulate import _keep, _label
    from orchestrator.settings import GarrisonSettings
    from orchestrator.store.repository import Store

    settings = GarrisonSettings(data_dir=tmp_path / "data")
    label = _label([Path("simulations/incidents")], "deny_all", "emulated", ["edr=defender"], [])
    await _keep(settings, "0123abcd", label, scorecard())

    store = await Store.open(settings.effective_database_url)
    try:
        run = await store.simulation_runs.get("0123abcd")
    finally:
        await store.close()
    assert run is not None and run.report == scorecard()
    assert run.label == (
        "simulations/incidents --analyst deny_all --backends emulated --vendor edr=defender"
    )


async def test_simulate_keeps_only_the_newest_runs_the_setting_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from orchestrator.cli_simulate import _keep
    from orchestrator.settings import GarrisonSettings
    from orchestrator.store.repository import Store

    monkeypatch.setenv("GARRISON_SIMULATION_RUNS_KEEP", "2")
    settings = GarrisonSettings(data_dir=tmp_path / "data")
    assert settings.simulation_runs_keep == 2
    for run_id in ("run-a", "run-b", "run-c"):
        await _keep(settings, run_id, "corpus", scorecard())

    store = await Store.open(settings.effective_database_url)
    try:
        kept = {r.id for r in await store.simulation_runs.list()}
    finally:
        await store.close()
    assert kept == {"run-b", "run-c"}
    assert GarrisonSettings().simulation_runs_keep == 2
    monkeypatch.delenv("GARRISON_SIMULATION_RUNS_KEEP")
    assert GarrisonSettings().simulation_runs_keep == 50
