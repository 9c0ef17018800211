"""`garrison playbook validate`: the mistakes a playbook author makes, each reported with the
file and line where it is, before any incident sees the playbook.

- an import of a vendor adapter, a twin (`tools.<capability>.<vendor>`), the orchestrator or the
  simulations: playbooks read the world only through the read-only Protocols (DESIGN.md §2);
- an action kind that does not exist (`ActionKind.BLOCK_EMAIL`);
- the module does not import, or defines no `PLAYBOOK`;
- the graph does not build or compile;
- an allowed kind without an inverse that the playbook did not declare `irreversible`;
- a state field whose type is not on the checkpoint allow-list (`checkpoint_types()`): a
  checkpoint holding it would not be read back when the graph resumes.
"""

from __future__ import annotations

import ast
import datetime
import inspect
import re
import types
import typing
import uuid
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from orchestrator.playbook_kit.loading import KitError, import_file, playbook_of, where
from playbooks.base import Playbook, PlaybookDeps
from tools.actions import ActionKind, sample_action

TOOLS_ALLOWED = {
    *("tools", "tools.models", "tools.actions", "tools.results", "tools.errors"),
    *("tools.toolsets", "tools.accounts", "tools.parents"),
}
FORBIDDEN_TOPS = {"orchestrator", "simulations"}
PLAIN_TYPES: set[Any] = {
    *(str, int, float, bool, bytes, type(None), list, dict, set, tuple, frozenset),
    *(datetime.datetime, datetime.date, datetime.timedelta, uuid.UUID, Any),
}


@dataclass(frozen=True, order=True)
class Problem:
    file: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}"


def validate_path(path: Path) -> list[Problem]:
    """Every problem of the playbook at `path` (a package folder or its graph.py)."""
    folder, graph_file = (path, path / "graph.py") if path.is_dir() else (path.parent, path)
    if not graph_file.is_file():
        return [Problem(str(path), 1, "no graph.py: not a playbook package")]
    files = sorted(folder.glob("*.py")) if path.is_dir() else [graph_file]
    problems = [p for f in files for p in scan_source(f)]
    try:
        module = import_file(graph_file)
        playbook = playbook_of(module, graph_file)
    except KitError as error:
        return sorted([*problems, _problem_of(str(error), graph_file)])
    return sorted(set(problems + check_playbook(playbook, graph_file)))


def _problem_of(message: str, path: Path) -> Problem:
    head, _, rest = message.partition(": ")
    file, _, line = head.rpartition(":")
    if file and line.isdigit():
        return Problem(file, int(line), rest)
    return Problem(str(path), 1, message)


def scan_source(path: Path) -> list[Problem]:
    """Imports and action kinds, from the source alone (it need not import)."""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except SyntaxError as error:
        return [Problem(str(path), error.lineno or 1, f"syntax error: {error.msg}")]
    problems = []
    kinds = {k.name for k in ActionKind}
    for node in ast.walk(tree):
        for module in _imported(node):
            reason = forbidden_import(module)
            if reason:
                line = getattr(node, "lineno", 1)
                problems.append(Problem(str(path), line, f"imports {module}: {reason}"))
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id == "ActionKind"
            and node.attr not in kinds
        ):
            problems.append(
                Problem(str(path), node.lineno, f"no action kind ActionKind.{node.attr}")
            )
    return problems


def _imported(node: ast.AST) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
        return [node.module]
    return []


def forbidden_import(module: str) -> str | None:
    top = module.split(".", 1)[0]
    if top in FORBIDDEN_TOPS:
        return f"a playbook may not import the {top} (it only proposes; they act)"
    parts = module.split(".")
    if (
        top == "tools"
        and module not in TOOLS_ALLOWED
        and not (len(parts) == 3 and parts[2] == "base")
    ):
        return "a vendor adapter or twin: read through deps.agents.tools (tools.<capability>.base)"
    return None


def check_playbook(playbook: Playbook, file: Path) -> list[Problem]:
    line = _line_of(file, "PLAYBOOK")
    problems = []
    for kind in sorted(playbook.allowed_actions):
        if sample_action(kind).inverse() is None and kind not in playbook.irreversible:
            problems.append(
                Problem(str(file), _line_of(file, kind.name, after=line),
                        f"{kind.value} has no inverse: list it in Playbook(irreversible=...)")
            )  # fmt: skip
    try:
        graph = playbook.build(PlaybookDeps(agents=None, playbook=playbook))  # type: ignore[arg-type]
        graph.compile()
    except Exception as error:  # the author's build raised: where and what
        return [*problems, _compile_problem(error, file)]
    return problems + state_problems(graph.state_schema)


def _compile_problem(error: Exception, file: Path) -> Problem:
    """LangGraph raises from its own code at compile time: point at the author's line that names
    what it complains about (`Found edge ending at unknown node `x``), else at `def build`."""
    located = _problem_of(f"{where(error, file)}: x", file)
    line = located.line if Path(located.file).resolve() == file.resolve() else 0
    if not line:
        names = re.findall(r"`([^`]+)`|'([^']+)'", str(error))
        for name in (a or b for a, b in names):
            line = _line_of(file, f"'{name}'", 0) or _line_of(file, f'"{name}"', 0)
            if line:
                break
    return Problem(
        str(file), line or _line_of(file, "def build"), f"graph does not compile: {error}"
    )


def state_problems(schema: Any) -> list[Problem]:
    from orchestrator.composition import checkpoint_types

    allowed = set(checkpoint_types())
    file = inspect.getsourcefile(schema) or "?"
    problems = []
    for name, hint in typing.get_type_hints(schema, include_extras=True).items():
        for bad in _unlisted(hint, allowed, set()):
            problems.append(
                Problem(file, _field_line(schema, name),
                        f"state field {name!r} holds {bad}, which is not on the checkpoint"
                        " allow-list (a pydantic model or enum of tools/agents/playbooks)")
            )  # fmt: skip
    return problems


def _unlisted(hint: Any, allowed: set[type], seen: set[int]) -> list[str]:
    if id(hint) in seen:
        return []
    seen.add(id(hint))
    origin = typing.get_origin(hint)
    if origin is not None or isinstance(hint, types.UnionType):
        args = typing.get_args(hint)
        if origin is typing.Annotated:
            args = args[:1]
        if origin is typing.Literal:
            return []
        return [bad for arg in args for bad in _unlisted(arg, allowed, seen)]
    if hint in PLAIN_TYPES or hint in allowed:
        return []
    if typing.is_typeddict(hint):
        return [
            b for h in typing.get_type_hints(hint).values() for b in _unlisted(h, allowed, seen)
        ]
    if isinstance(hint, type) and issubclass(hint, BaseModel | Enum):
        return [f"{hint.__module__}.{hint.__qualname__}"]
    return [getattr(hint, "__qualname__", repr(hint))]


def _field_line(schema: Any, name: str) -> int:
    try:
        lines, start = inspect.getsourcelines(schema)
    except (OSError, TypeError):
        return 1
    for offset, text in enumerate(lines):
        if text.strip().startswith(f"{name}:"):
            return start + offset
    return start


def _line_of(file: Path, word: str, after: int = 1) -> int:
    """The first line from `after` on that holds `word` (the `PLAYBOOK =` line for PLAYBOOK);
    `after` when none does (0: the caller looks further)."""
    try:
        lines = file.read_text(encoding="utf-8").splitlines()
    except OSError:
        return after
    start = max(after, 1)
    for number, text in enumerate(lines[start - 1 :], start):
        comment = text.lstrip().startswith("#")
        if word in text and not comment and (word != "PLAYBOOK" or text.startswith("PLAYBOOK")):
            return number
    return after


def validate_cacao(path: Path) -> list[Problem]:
    """A CACAO document: the schema, the references, and the graph it makes."""
    from orchestrator.playbook_kit.cacao_files import load_checked

    try:
        load_checked(path)
    except KitError as error:
        return [_problem_of(str(error), path)]
    return []
