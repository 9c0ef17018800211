"""The C-parsed safe YAML means what PyYAML's pure-Python safe loader means, on every YAML file
Garrison reads at startup, and refuses what it refuses with the line of the problem."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tools.yaml_safe import SafeLoader, safe_load

ROOT = Path(__file__).resolve().parents[2]
STARTUP_FILES = sorted(
    [
        *(ROOT / "agents" / "knowledge_base").glob("*.yaml"),
        ROOT / "orchestrator" / "policy" / "default.yaml",
        ROOT / "playbooks" / "routing.yaml",
        ROOT / "tools" / "account_fields.yaml",
    ]
)


def test_the_c_parser_is_the_one_used() -> None:
    assert yaml.__with_libyaml__, "PyYAML without libyaml: startup parses YAML in Python"
    assert SafeLoader is yaml.CSafeLoader


@pytest.mark.parametrize("path", STARTUP_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_startup_file_reads_the_same_as_with_the_python_parser(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    parsed = safe_load(text)
    assert parsed, path
    assert parsed == yaml.safe_load(text)


@pytest.mark.parametrize(
    "text",
    [
        "when: 2026-12-07\nport: 0o17\nflag: yes\nnone: ~\nfloat: 1e3\n",
        "a: &x [1, 2]\nb: *x\n<<: {c: 3}\n",
        "text: |\n  two\n  lines\n",
    ],
)
def test_scalars_anchors_and_merges_mean_the_same(text: str) -> None:
    assert safe_load(text) == yaml.safe_load(text)


def test_a_python_object_tag_is_refused_as_by_the_safe_loader() -> None:
    with pytest.raises(yaml.YAMLError):
        safe_load("!!python/object/apply:os.system ['true']\n")


def test_a_syntax_error_names_its_line() -> None:
    with pytest.raises(yaml.YAMLError) as raised:
        safe_load("a: 1\nb: [unclosed\nc: 3\n")
    mark = getattr(raised.value, "problem_mark", None)
    assert mark is not None and mark.line >= 1
