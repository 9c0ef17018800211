"""`garrison shadow`: a candidate replayed beside the current version over recorded incidents,
side effects off, and the agreement table. A candidate whose knowledge differs in one deliberate
entry (no account is reset-only any more: krbtgt gets disabled rather than reset) disagrees on
exactly the incident and the proposals that entry decides; an identical copy agrees everywhere."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment
from typer.testing import CliRunner

from orchestrator.cli import app
from orchestrator.cli_shadow import _keep
from orchestrator.settings import GarrisonSettings, TemporalSettings
from simulations.loader import load_all
from simulations.shadow.compare import compare_sides
from simulations.shadow.records import Proposal, ShadowIncident, ShadowSide
from simulations.shadow.run import Candidate, report_of, run_side_process
from simulations.shadow.side import run_side

ROOT = Path(__file__).parents[2]
PACKAGED = ROOT / "agents" / "knowledge_base"
INCIDENTS = [
    ROOT / "simulations" / "incidents" / "otrf-covenant-dcsync-ws5",  # krbtgt reset proposed
    ROOT / "simulations" / "incidents" / "otrf-dc-sam-policy-mordordc",  # benign, no proposal
]
KRBTGT = "theshire\\krbtgt"


def _side(role: str, *incidents: ShadowIncident) -> ShadowSide:
    return ShadowSide.model_validate(
        {
            "role": role,
            "run_id": f"x-{role}",
            "knowledge_version": "v",
            "knowledge_dir": None,
            "python": sys.executable,
            "incidents": [i.model_dump() for i in incidents],
        }
    )


def _incident(verdict: str = "malicious", *proposals: Proposal) -> ShadowIncident:
    return ShadowIncident(id="a", verdict=verdict, category="c", proposals=list(proposals))  # type: ignore[arg-type]


def test_compare_counts_each_kind_of_disagreement() -> None:
    isolate = Proposal(action="isolate_host:H", decision="needs_approval", risk=60, approvers=1)
    block = Proposal(action="block_ip:1.2.3.4", decision="allow", risk=10, approvers=0)
    riskier = isolate.model_copy(update={"risk": 90, "approvers": 2})
    same = compare_sides("s", _side("current", _incident()), _side("candidate", _incident()))
    assert same.totals.agree == 1 and same.totals.disagree == 0
    report = compare_sides(
        "s",
        _side("current", _incident("malicious", isolate)),
        _side("candidate", _incident("benign", riskier, block)),
    )
    (row,) = report.incidents
    assert not row.agrees and not row.verdict_agrees
    assert row.proposals_added == ["block_ip:1.2.3.4"] and row.proposals_removed == []
    assert [(c.current, c.candidate) for c in row.risk_changes] == [("60", "90")]
    assert [(c.current, c.candidate) for c in row.decision_changes] == [
        ("needs_approval(1)", "needs_approval(2)")
    ]
    totals = report.totals
    assert (totals.verdict_disagree, totals.proposals_added, totals.risk_changes) == (1, 1, 1)


def test_compare_an_incident_missing_on_one_side_is_an_error() -> None:
    other = _incident().model_copy(update={"id": "b"})
    report = compare_sides("s", _side("current", _incident(), other), _side("candidate", other))
    assert report.totals.errors == 1 and report.totals.disagree == 1
    assert report.incidents[0].errors == ["candidate: not replayed by the candidate"]


def _knowledge(folder: Path, version: str, estate: str | None = None) -> Path:
    folder.mkdir()
    (folder / "manifest.yaml").write_text(f'version: "{version}"\n', encoding="utf-8")
    if estate is not None:
        (folder / "estate.yaml").write_text(estate, encoding="utf-8")
    return folder


@pytest.mark.temporal
@pytest.mark.simulation
@pytest.mark.slow  # three replays of two incidents, two of them in processes of their own
async def test_shadow_disagrees_exactly_where_the_candidate_knowledge_differs(
    temporal_env: WorkflowEnvironment, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    address = temporal_env.client.service_client.config.target_host
    prefix = f"shadow-{uuid.uuid4().hex[:8]}"
    for name in [n for n in os.environ if n.startswith("GARRISON_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("GARRISON_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("GARRISON_TEMPORAL_ADDRESS", address)
    monkeypatch.setenv("GARRISON_TEMPORAL_TASK_QUEUE_PREFIX", prefix)
    settings = GarrisonSettings(
        data_dir=tmp_path, temporal=TemporalSettings(address=address, task_queue_prefix=prefix)
    )
    current, card = await run_side(load_all(INCIDENTS).incidents, settings, "current", "t-current")
    assert card.incidents == 2
    proposed = {i.id: [p.action for p in i.proposals] for i in current.incidents}
    assert f"reset_credentials:{KRBTGT}" in proposed["otrf-covenant-dcsync-ws5"]

    copy = tmp_path / "same"
    shutil.copytree(PACKAGED, copy, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    packaged_estate = (PACKAGED / "estate.yaml").read_text(encoding="utf-8")
    assert "reset_only_accounts: '^krbtgt(_\\d+)?$'" in packaged_estate
    changed = _knowledge(
        tmp_path / "changed",
        "test-no-reset-only",
        packaged_estate.replace("'^krbtgt(_\\d+)?$'", "'^no-such-account$'"),
    )
    documents = {"current": {"side": current.dump()}}
    names, folders = ("same", "changed"), (copy, changed)
    sides = await asyncio.gather(  # the two candidates' processes side by side
        *(
            asyncio.to_thread(
                run_side_process,
                "candidate",
                f"t{name}",
                INCIDENTS,
                overrides=Candidate(knowledge_dir=folder).overrides(),
            )
            for name, folder in zip(names, folders, strict=True)
        )
    )
    documents |= dict(zip(names, sides, strict=True))

    same = report_of("t", {"current": documents["current"], "candidate": documents["same"]})
    assert same.totals.incidents == 2 and same.totals.disagree == 0, same.totals
    diff = report_of("t", {"current": documents["current"], "candidate": documents["changed"]})
    assert diff.candidate.knowledge_version == "test-no-reset-only"
    assert (diff.totals.agree, diff.totals.disagree, diff.totals.verdict_disagree) == (1, 1, 0)
    (row,) = [r for r in diff.incidents if not r.agrees]
    assert row.id == "otrf-covenant-dcsync-ws5"
    assert (row.proposals_added, row.proposals_removed) == (
        [f"disable_account:{KRBTGT}"],
        [f"reset_credentials:{KRBTGT}"],
    )
    assert row.risk_changes == [] and row.decision_changes == []

    # kept in the store, the run's report is the same table
    candidate = Candidate(knowledge_dir=changed)
    kept = {"current": documents["current"] | {"scorecard": card.model_dump(mode="json")}}
    kept["candidate"] = documents["changed"]
    await _keep(settings, "tkept", INCIDENTS, candidate, kept)  # type: ignore[arg-type]
    env = {k: v for k, v in os.environ.items() if not k.startswith("GARRISON_")}
    shown = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "orchestrator.cli", "shadow", "report", "--json"],
        env=env | {"GARRISON_DATA_DIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["totals"] == diff.totals.model_dump()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--candidate-knowledge", "{tmp}/nowhere"], "nowhere: not a directory"),
        (["--candidate-knowledge", "{tmp}/bad"], "bad/rules.yaml: noisy_factor"),
        (["--candidate-knowledge", "{tmp}/nomanifest"], "manifest.yaml: missing"),
        ([], "the candidate is the current version"),
        (["--candidate-setting", "KNOWLEDGE=x"], "expected GARRISON_NAME=VALUE"),
        (["--candidate-python", "{tmp}/nopython"], "nopython: not an executable file"),
    ],
)
def test_shadow_run_refuses_a_bad_candidate_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], message: str
) -> None:
    bad = _knowledge(tmp_path / "bad", "bad")
    (bad / "rules.yaml").write_text("noisy_rules: []\nnoisy_titles: []\nnoisy_factor: 7\n")
    (tmp_path / "nomanifest").mkdir()
    monkeypatch.setenv("GARRISON_DATA_DIR", str(tmp_path))
    argv = ["shadow", "run", str(INCIDENTS[0]), *(a.format(tmp=tmp_path) for a in args)]
    result = CliRunner().invoke(app, argv)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output


def test_shadow_report_without_a_kept_run_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GARRISON_DATA_DIR", str(tmp_path))
    result = CliRunner().invoke(app, ["shadow", "report"])
    assert result.exit_code == 2 and "no shadow run kept" in result.output
    result = CliRunner().invoke(app, ["shadow", "report", "nope"])
    assert result.exit_code == 2 and "no shadow run 'nope'" in result.output
    result = CliRunner().invoke(app, ["shadow", "report", "--live"])
    assert result.exit_code == 2 and "GARRISON_SHADOW_LIVE_DATABASE_URL: required" in result.output
    result = CliRunner().invoke(app, ["shadow", "follow", "--once"])
    assert result.exit_code == 2 and "GARRISON_SHADOW_LIVE_DATABASE_URL: required" in result.output
