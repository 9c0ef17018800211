"""The direction of imports (DESIGN.md §2): tools <- agents <- playbooks <- orchestrator. Agents and
playbooks see only read-only Protocols and shared models, never a vendor module or a twin."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TOOLS_ALLOWED = {
    "tools",
    "tools.models",
    "tools.actions",
    "tools.results",
    "tools.errors",
    "tools.toolsets",
    "tools.accounts",  # the account value type: pure parsing, like tools.models
    "tools.parents",  # a pure function over tools.results: no vendor, no twin
    "tools.yaml_safe",  # the YAML parser the knowledge base and routing read with: no vendor
}


def imports(package: str) -> list[tuple[Path, str]]:
    found: list[tuple[Path, str]] = []
    for path in sorted((ROOT / package).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found += [(path, alias.name) for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.append((path, node.module))
    return found


def allowed_tools_module(module: str) -> bool:
    if module in TOOLS_ALLOWED:
        return True
    parts = module.split(".")
    return len(parts) == 3 and parts[0] == "tools" and parts[2] == "base"


def test_agents_and_playbooks_import_only_protocols_and_models() -> None:
    bad = []
    for package in ("agents", "playbooks"):
        for path, module in imports(package):
            top = module.split(".", 1)[0]
            if top == "orchestrator" or (top == "tools" and not allowed_tools_module(module)):
                bad.append(f"{path.relative_to(ROOT)}: {module}")
            if package == "agents" and top == "playbooks":
                bad.append(f"{path.relative_to(ROOT)}: {module}")
    assert bad == []


def test_tools_import_no_upper_layer() -> None:
    bad = [
        f"{path.relative_to(ROOT)}: {module}"
        for path, module in imports("tools")
        if module.split(".", 1)[0] in {"agents", "playbooks", "orchestrator"}
    ]
    assert bad == []


def test_the_check_sees_imports() -> None:
    assert any(m == "tools.actions" for _, m in imports("playbooks"))
    assert not allowed_tools_module("tools.edr.memory")
    assert not allowed_tools_module("tools.edr.crowdstrike")
    assert allowed_tools_module("tools.edr.base")


def test_simulations_start_incidents_only_through_ingestion() -> None:
    """`simulations/` hands alerts to `orchestrator.ingest` like every other entry point: it never
    starts or signals an incident workflow itself."""
    bad = []
    for path in sorted((ROOT / "simulations").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Attribute) and node.attr in {
                "start_workflow",
                "execute_workflow",
                "signal_with_start",
            }:
                bad.append(f"{path.relative_to(ROOT)}:{node.lineno}: {node.attr}")
            if isinstance(node, ast.keyword) and node.arg == "start_signal":
                bad.append(f"{path.relative_to(ROOT)}:{node.value.lineno}: start_signal=")
    assert bad == []
    uses_ingest = [m for _, m in imports("simulations") if m.startswith("orchestrator.ingest")]
    assert uses_ingest
