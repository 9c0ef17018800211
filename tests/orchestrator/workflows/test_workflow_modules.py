"""Garrison's workflow modules are shared by every workflow a worker runs (the worker's sandbox
passes `orchestrator.workflows` through instead of importing it again per workflow), so they must
hold no state: every module-level and class-level value is a constant a workflow cannot change."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from orchestrator.worker import WORKFLOW_RUNNER

WORKFLOWS = Path(__file__).resolve().parents[3] / "orchestrator" / "workflows"
MODULES = sorted(WORKFLOWS.glob("*.py"))
# Calls whose result cannot be changed in place (or, for `field`, gives each instance its own).
IMMUTABLE_CALLS = {"TypeVar", "MappingProxyType", "frozenset", "tuple", "field", "timedelta"}


def _problems(tree: ast.Module) -> list[str]:
    problems: list[str] = []

    def check_value(value: ast.expr | None, where: str, line: int) -> None:
        if value is None:
            return
        if isinstance(value, ast.List | ast.Dict | ast.Set | ast.ListComp | ast.DictComp):
            problems.append(f"line {line}: {where} is a mutable {type(value).__name__}")
        elif isinstance(value, ast.Call):
            name = getattr(value.func, "id", getattr(value.func, "attr", ""))
            if name not in IMMUTABLE_CALLS:
                problems.append(f"line {line}: {where} is the result of {name}()")
            for arg in value.args:
                if isinstance(arg, ast.Dict) and name == "MappingProxyType":
                    continue
                check_value(arg, where, line)

    def check_body(body: list[ast.stmt], scope: str) -> None:
        for node in body:
            if isinstance(node, ast.Assign | ast.AnnAssign):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                names = ", ".join(ast.unparse(t) for t in targets)
                check_value(node.value, f"{scope} {names}", node.lineno)
            elif isinstance(node, ast.ClassDef):
                check_body(node.body, f"class {node.name}:")
            elif isinstance(node, ast.With):
                check_body(node.body, scope)

    check_body(tree.body, "module-level")
    for node in ast.walk(tree):
        if isinstance(node, ast.Global | ast.Nonlocal):
            problems.append(f"line {node.lineno}: declares {type(node).__name__}")
    return problems


def test_the_worker_passes_the_workflow_modules_through() -> None:
    assert "orchestrator.workflows" in WORKFLOW_RUNNER.restrictions.passthrough_modules


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_a_workflow_module_holds_no_state(path: Path) -> None:
    assert _problems(ast.parse(path.read_text(encoding="utf-8"))) == []


@pytest.mark.parametrize(
    "source",
    [
        "SEEN = []\n",
        "KINDS: dict[str, int] = {}\n",
        "CACHE = build()\n",
        "class W:\n    pending = set()\n",
        "def f():\n    global X\n",
    ],
)
def test_the_check_finds_state(source: str) -> None:
    assert _problems(ast.parse(source)), source
