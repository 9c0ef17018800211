"""`garrison playbook` as an author runs it: every command's output, and bad input ending in one
`error:` line with exit status 2 (validation problems: status 1), never a traceback."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from typer.testing import CliRunner, Result

from orchestrator.cli_playbook import playbook_app

ROOT = Path(__file__).resolve().parents[2]
THIRD_PARTY = Path(__file__).parent / "data" / "cacao-contain-c2-beacon.json"
C2_INCIDENT = "otrf-empire-vbs-c2-ws5"


def garrison(*args: str | Path) -> Result:
    app = typer.Typer(pretty_exceptions_enable=False)
    app.add_typer(playbook_app, name="playbook")
    result = CliRunner().invoke(app, ["playbook", *map(str, args)])
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    return result


def test_list_shows_every_registered_playbook_and_its_kinds() -> None:
    result = garrison("list")
    assert result.exit_code == 0
    assert "credential_access" in result.output and "revoke_sessions" in result.output
    assert "triage_only" in result.output


def test_show_prints_mermaid_and_the_actions_with_inverses() -> None:
    result = garrison("show", "credential_access")
    assert result.exit_code == 0
    assert "graph TD;" in result.output
    assert "contain -.-> lesser_containment;" in result.output  # the conditional edge
    assert "isolate_host" in result.output and "release_host" in result.output
    assert "irreversible" in result.output


def test_show_without_an_offline_renderer_says_what_to_install(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no `dot` binary
    result = garrison("show", "triage_only", "--svg", tmp_path / "g.svg")
    assert result.exit_code == 2
    assert "error: no offline renderer for svg: install Graphviz" in result.output
    assert not (tmp_path / "g.svg").exists()


def test_unknown_playbook_is_one_clear_line() -> None:
    result = garrison("show", "no_such_playbook")
    assert result.exit_code == 2
    assert result.output.startswith("error: no playbook 'no_such_playbook'")


def test_validate_passes_the_built_ins_and_fails_with_file_and_line(tmp_path: Path) -> None:
    assert garrison("validate").exit_code == 0
    package = tmp_path / "playbooks" / "bad"
    assert garrison("new", "bad", "--dir", package.parent, "--tests", tmp_path).exit_code == 0
    graph = package / "graph.py"
    line = graph.read_text().splitlines().index("from agents.models import ProposedAction") + 1
    graph.write_text(
        graph.read_text().replace(
            "from agents.models", "import tools.edr.memory\nfrom agents.models"
        )
    )

    result = garrison("validate", package)
    assert result.exit_code == 1
    assert f"{graph}:{line}: imports tools.edr.memory" in result.output
    assert garrison("validate", tmp_path / "nowhere").exit_code == 2


def test_new_refuses_an_existing_name_and_a_bad_one(tmp_path: Path) -> None:
    args = ("--dir", tmp_path / "pb", "--tests", tmp_path / "t")
    assert garrison("new", "beacon", *args).exit_code == 0
    again = garrison("new", "beacon", *args)
    assert again.exit_code == 2 and "exists" in again.output
    bad = garrison("new", "Bad-Name", *args)
    assert bad.exit_code == 2 and "lower case" in bad.output
    category = garrison("new", "other", *args, "--category", "nonsense")
    assert category.exit_code == 2 and "no category 'nonsense'" in category.output


def test_dry_run_prints_each_proposal_with_its_policy_decision() -> None:
    result = garrison("dry-run", "hands_on_keyboard", C2_INCIDENT, "--approvals", "deny")
    assert result.exit_code == 0, result.output
    rows = [line.split() for line in result.output.splitlines() if line.strip().startswith("1 ")]
    assert ["1", "block_ip", "10.10.10.5", "allow", "11", "-", "executed"] in rows
    assert "expected actions proposed: 2 of 2" in result.output


def test_dry_run_bad_input_is_one_line() -> None:
    missing = garrison("dry-run", "hands_on_keyboard", "no-such-incident")
    assert missing.exit_code == 2 and missing.output.startswith("error: no recorded incident")
    mode = garrison("dry-run", "hands_on_keyboard", C2_INCIDENT, "--approvals", "maybe")
    assert mode.exit_code == 2 and "approve, deny or expire" in mode.output


def test_export_then_import_writes_a_package_that_validates_and_runs(tmp_path: Path) -> None:
    exported = tmp_path / "hok.json"
    assert garrison("export", "hands_on_keyboard", "--cacao", "-o", exported).exit_code == 0
    document = json.loads(exported.read_text())
    assert document["spec_version"] == "cacao-2.0"

    clash = garrison("import", exported, "--dir", ROOT / "playbooks")
    assert clash.exit_code == 2 and "exists" in clash.output  # the built-in is not overwritten
    result = garrison("import", exported, "--dir", tmp_path, "--id", "hok_copy")
    assert result.exit_code == 0, result.output
    assert garrison("validate", tmp_path / "hok_copy").exit_code == 0
    run = garrison("dry-run", tmp_path / "hok_copy", C2_INCIDENT)
    assert "expected actions proposed: 2 of 2" in run.output


def test_import_refuses_a_document_off_the_schema(tmp_path: Path) -> None:
    broken = json.loads(THIRD_PARTY.read_text())
    del broken["workflow_start"]
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(broken))

    result = garrison("import", path, "--dir", tmp_path)
    assert result.exit_code == 2
    assert result.output.startswith(f"error: {path}: $: 'workflow_start' is a required property")
    assert garrison("validate", path).exit_code == 1
    not_json = tmp_path / "x.json"
    not_json.write_text("{")
    assert "not JSON" in garrison("import", not_json).output
    binary = tmp_path / "b.json"
    binary.write_bytes(b"\xff\xfe{")
    assert "not UTF-8 text" in garrison("import", binary).output


def test_test_scores_a_playbook_and_fails_on_a_missed_expected_action(tmp_path: Path) -> None:
    passed = garrison("test", "hands_on_keyboard", C2_INCIDENT)
    assert passed.exit_code == 0
    assert [C2_INCIDENT, "2/2", "2"] in [line.split() for line in passed.output.splitlines()]
    garrison("new", "blocker", "--dir", tmp_path, "--tests", tmp_path)
    missed = garrison("test", tmp_path / "blocker", C2_INCIDENT)  # blocks only: no isolation
    assert missed.exit_code == 1
    assert "1/2" in missed.output and "isolate_host WORKSTATION5" in missed.output
