"""The worked example of docs/authoring-playbooks.md, followed step by step as a new author would:
its commands and code blocks are read from the document (they cannot drift apart), run in a
scratch folder, and nothing outside the new package and its test is edited."""

from __future__ import annotations

import asyncio
import importlib.util
import inspect
import re
import shlex
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from orchestrator.cli_playbook import playbook_app
from orchestrator.playbook_kit.testing import assert_covers_expected, run_on_incident

DOC = Path(__file__).resolve().parents[2] / "docs" / "authoring-playbooks.md"
BLOCK = re.compile(r"<!-- worked-example: ([\w-]+) -->\n```\w+\n(.*?)```", re.S)


def blocks() -> dict[str, str]:
    return dict(BLOCK.findall(DOC.read_text(encoding="utf-8")))


def garrison(command: str) -> str:
    words = shlex.split(command)
    assert words[:2] == ["garrison", "playbook"], command
    app = typer.Typer(pretty_exceptions_enable=False)
    app.add_typer(playbook_app, name="playbook")
    result = CliRunner().invoke(app, words[1:])
    assert result.exit_code == 0, result.output
    return result.output


def rows(text: str) -> list[list[str]]:
    return [line.split() for line in text.splitlines() if line.strip()[:1].isdigit()]


def test_the_worked_example_runs_as_documented(tmp_path: Path, monkeypatch) -> None:
    steps = blocks()
    monkeypatch.chdir(tmp_path)

    # 1. scaffold
    garrison(steps["new"].strip())
    package = tmp_path / "playbooks" / "beacon_containment"
    test_file = tmp_path / "tests" / "playbooks" / "test_beacon_containment.py"
    written = {p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file()}
    assert written == {
        Path("playbooks/beacon_containment/__init__.py"),
        Path("playbooks/beacon_containment/graph.py"),
        Path("playbooks/beacon_containment/README.md"),
        Path("tests/playbooks/test_beacon_containment.py"),
    }

    # 2. edit graph.py as the document says
    graph = package / "graph.py"
    text = graph.read_text(encoding="utf-8")
    text = re.sub(r"^from tools\.actions import .*$", steps["imports"].strip(), text, flags=re.M)
    text = re.sub(
        r"^async def contain\(.*?(?=^async def summarise)",
        steps["contain"] + "\n\n",
        text,
        flags=re.S | re.M,
    )
    text = re.sub(r"^    allowed_actions=.*$\n", steps["allowed"], text, flags=re.M)
    graph.write_text(text, encoding="utf-8")

    # 3. validate
    assert "ok:" in garrison(steps["validate"].strip())

    # 4. dry-run: the table the document shows
    shown = garrison(steps["dry-run"].strip())
    assert rows(steps["dry-run-output"]) and all(
        r in rows(shown) for r in rows(steps["dry-run-output"])
    )
    assert "expected actions proposed: 2 of 2" in shown

    # 5. the scaffolded test, with the document's assertion added, passes
    tests = test_file.read_text(encoding="utf-8")
    anchor = "    assert_proposes(run, ActionKind.BLOCK_IP)\n"
    assert anchor in tests
    test_file.write_text(tests.replace(anchor, anchor + steps["test"]), encoding="utf-8")
    spec = importlib.util.spec_from_file_location("test_beacon_containment", test_file)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for name, function in vars(module).items():
        if name.startswith("test_"):
            result = function()
            if inspect.iscoroutine(result):
                asyncio.run(result)

    # 6. simulate on the corpus's incidents of its category: every expected action proposed
    scored = garrison(steps["simulate"].strip())
    scores = {line.split()[0]: line.split()[1] for line in scored.splitlines()[1:] if line.strip()}
    assert scores and set(scores.values()) == {"2/2"}, scored
    run = asyncio.run(run_on_incident(package, "otrf-empire-vbs-c2-ws5"))
    assert_covers_expected(run)
    assert {d.decision.outcome.value for d in run.decisions} == {"allow"}


def test_the_added_assertion_fails_on_the_unedited_scaffold(tmp_path: Path, monkeypatch) -> None:
    """Step 5 is a real check: the template alone proposes no isolation."""
    monkeypatch.chdir(tmp_path)
    garrison(blocks()["new"].strip())
    from orchestrator.playbook_kit.testing import assert_proposes
    from tools.actions import ActionKind

    run = asyncio.run(
        run_on_incident(tmp_path / "playbooks" / "beacon_containment", "otrf-empire-vbs-c2-ws5")
    )
    with pytest.raises(AssertionError, match="expected a isolate_host proposal on WORKSTATION5"):
        assert_proposes(run, ActionKind.ISOLATE_HOST, "WORKSTATION5")
