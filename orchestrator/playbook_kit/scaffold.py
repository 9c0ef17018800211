"""`garrison playbook new NAME`: a playbook package (graph.py, README.md, __init__.py) and its
pytest test, written from the templates shipped in `templates/`. Nothing is overwritten."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from string import Template

from orchestrator.playbook_kit.loading import KitError
from tools.models import Category

TEMPLATES = Path(__file__).with_name("templates")
NAME = re.compile(r"^[a-z][a-z0-9_]{1,48}$")
DEFAULT_INCIDENT = "otrf-empire-vbs-c2-ws5"


@dataclass(frozen=True)
class Scaffolded:
    package: Path
    files: list[Path]


def scaffold(
    name: str,
    playbooks_dir: Path = Path("playbooks"),
    tests_dir: Path = Path("tests/playbooks"),
    category: Category = Category.COMMAND_AND_CONTROL,
    incident: str = DEFAULT_INCIDENT,
) -> Scaffolded:
    if not NAME.match(name):
        raise KitError(f"{name!r}: a playbook name is lower case letters, digits and _ (a-z first)")
    package = playbooks_dir / name
    test_file = tests_dir / f"test_{name}.py"
    for path in (package, test_file):
        if path.exists():
            raise KitError(f"{path} exists: choose another name (nothing was written)")
    title = f"{name.replace('_', ' ').capitalize()}: block the attacker's addresses"
    values = {
        "name": name,
        "title": title,
        "category": category.name,
        "category_value": category.value,
        "folder": str(package),
        "incident": incident,
        "test_file": str(test_file),
        "relative": os.path.relpath(package, tests_dir),
    }
    outputs = {
        package / "__init__.py": "",
        package / "graph.py": _fill("graph.py.tmpl", values),
        package / "README.md": _fill("README.md.tmpl", values),
        test_file: _fill("test_playbook.py.tmpl", values),
    }
    package.mkdir(parents=True)
    tests_dir.mkdir(parents=True, exist_ok=True)
    for path, text in outputs.items():
        path.write_text(text, encoding="utf-8")
    return Scaffolded(package, list(outputs))


def _fill(template: str, values: dict[str, str]) -> str:
    return Template((TEMPLATES / template).read_text(encoding="utf-8")).substitute(values)
