"""`garrison playbook validate`: each mistake an author makes is caught, with the file and the line.
Every case starts from a freshly scaffolded (valid) playbook and makes one edit."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.playbook_kit.scaffold import scaffold
from orchestrator.playbook_kit.validate import Problem, validate_path
from playbooks.registry import registered_playbooks

ROOT = Path(__file__).resolve().parents[2]


def _scaffolded(tmp_path: Path, name: str) -> Path:
    made = scaffold(name, tmp_path / "playbooks", tmp_path / "tests")
    return made.package / "graph.py"


def _edit(graph: Path, old: str, new: str) -> int:
    """Replace `old` by `new` in the file and return the line where `new` starts."""
    text = graph.read_text(encoding="utf-8")
    assert old in text
    graph.write_text(text.replace(old, new, 1), encoding="utf-8")
    return text[: text.index(old)].count("\n") + 1


def _only(problems: list[Problem], graph: Path) -> Problem:
    assert len(problems) == 1, problems
    assert Path(problems[0].file).resolve() == graph.resolve()
    return problems[0]


def test_the_scaffold_and_every_built_in_playbook_are_valid(tmp_path: Path) -> None:
    assert validate_path(_scaffolded(tmp_path, "fresh").parent) == []
    for playbook in registered_playbooks():
        assert validate_path(ROOT / "playbooks" / playbook.id) == [], playbook.id


@pytest.mark.parametrize(
    ("module", "says"),
    [
        ("tools.edr.crowdstrike", "vendor adapter or twin"),
        ("tools.firewall.memory", "vendor adapter or twin"),
        ("orchestrator.policy", "may not import the orchestrator"),
        ("simulations.backends", "may not import the simulations"),
    ],
)
def test_vendor_twin_and_orchestrator_imports_are_refused(
    tmp_path: Path, module: str, says: str
) -> None:
    graph = _scaffolded(tmp_path, "imports")
    line = _edit(graph, "from agents.models", f"import {module}  # noqa\nfrom agents.models")

    problem = _only(validate_path(graph.parent), graph)
    assert (problem.line, module in problem.message, says in problem.message) == (line, True, True)


def test_an_action_kind_that_does_not_exist_is_named(tmp_path: Path) -> None:
    graph = _scaffolded(tmp_path, "kinds")
    line = _edit(graph, "{ActionKind.BLOCK_IP}", "{ActionKind.BLOCK_IP, ActionKind.BLOCK_EMAIL}")

    problems = validate_path(graph.parent)
    assert Problem(str(graph), line, "no action kind ActionKind.BLOCK_EMAIL") in problems


def test_a_kind_without_inverse_must_be_declared_irreversible(tmp_path: Path) -> None:
    graph = _scaffolded(tmp_path, "inverse")
    line = _edit(graph, "{ActionKind.BLOCK_IP}", "{ActionKind.BLOCK_IP, ActionKind.KILL_PROCESS}")

    problem = _only(validate_path(graph.parent), graph)
    assert problem.line == line
    assert "kill_process has no inverse" in problem.message

    _edit(
        graph,
        "    build=build,\n)",
        "    build=build,\n    irreversible=frozenset({ActionKind.KILL_PROCESS}),\n)",
    )
    assert validate_path(graph.parent) == []  # fmt: skip


def test_a_graph_that_does_not_compile_names_the_line(tmp_path: Path) -> None:
    graph = _scaffolded(tmp_path, "compiles")
    line = _edit(
        graph,
        "    graph.add_edge(Step.SUMMARISE, END)",
        "    graph.add_edge(Step.SUMMARISE, 'nowhere')",
    )

    problem = _only(validate_path(graph.parent), graph)
    assert problem.line == line
    assert "graph does not compile" in problem.message and "nowhere" in problem.message


def test_a_state_type_off_the_checkpoint_allow_list_is_named(tmp_path: Path) -> None:
    graph = _scaffolded(tmp_path, "state")
    _edit(graph, "class Step(StrEnum):", (
        "class Scratch(BaseModel):\n    note: str\n\n\n"
        "class State(PlaybookState):\n    scratch: Scratch\n\n\nclass Step(StrEnum):"
    ))  # fmt: skip
    _edit(
        graph,
        "from enum import StrEnum",
        "from enum import StrEnum\n\nfrom pydantic import BaseModel",
    )
    _edit(graph, "StateGraph(PlaybookState)", "StateGraph(State)")
    line = graph.read_text(encoding="utf-8").splitlines().index("    scratch: Scratch") + 1

    problem = _only(validate_path(graph.parent), graph)
    assert problem.line == line
    assert "state field 'scratch'" in problem.message and "allow-list" in problem.message


def test_a_module_that_does_not_import_names_the_line(tmp_path: Path) -> None:
    graph = _scaffolded(tmp_path, "broken")
    line = _edit(
        graph,
        "from tools.actions import ActionKind, BlockIp",
        "from tools.actions import ActionKind, BlockEmail",
    )

    problem = _only(validate_path(graph.parent), graph)
    assert problem.line == line and "BlockEmail" in problem.message  # fmt: skip


def test_a_module_without_playbook_is_refused(tmp_path: Path) -> None:
    graph = _scaffolded(tmp_path, "empty")
    _edit(graph, "PLAYBOOK = Playbook(", "OTHER = Playbook(")

    problem = _only(validate_path(graph.parent), graph)
    assert "defines no PLAYBOOK" in problem.message


def test_a_playbook_inside_the_playbooks_package_is_imported_under_its_own_name(
    tmp_path: Path,
) -> None:
    """So its own state models are the classes the checkpoint allow-list holds."""
    from orchestrator.playbook_kit.loading import _dotted_name

    assert _dotted_name(ROOT / "playbooks" / "credential_access" / "graph.py") == (
        "playbooks.credential_access.graph"
    )
    assert _dotted_name(_scaffolded(tmp_path, "outside")) is None
