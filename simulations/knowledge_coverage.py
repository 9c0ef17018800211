"""ATT&CK coverage of the agents' knowledge, taken from the SigmaHQ rules rather than the corpus:
every technique and sub-technique a rule is tagged with must have an entry in
`agents/knowledge_base/techniques.yaml` (a tactic, so a category; a weight; a response).

`sigma_techniques(rules)` reads every rule (the shared `sigma-rules.tar.gz`, or a folder of
`.yml`) and returns, per technique tag, the tactic tags declared on the same rules. Run as a
script, it writes an entry for each technique that has none and leaves every existing line as it
is (hand-tuned weights stay):

    .venv/bin/python -m simulations.knowledge_coverage            # add the missing entries
    .venv/bin/python -m simulations.knowledge_coverage --check    # list them, exit 1 if any

A new entry's tactic is the one its rules declare most often (ties: the category an analyst
contains first, `category_priority`); a sub-technique of a technique that already has an entry
takes that entry's tactic, weight and response, so a hand-made decision about the technique holds
for its sub-techniques. Its weight is the tactic's default and its response the category's
(`tactics`, `category_response`). Bump `manifest.yaml`'s version after writing.
"""

from __future__ import annotations

import argparse
import re
import sys
import tarfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import yaml

from agents.knowledge_base import PACKAGED_DIR
from agents.knowledge_base.schema import TechniqueEntry, Techniques
from tools.yaml_safe import SafeLoader

ROOT = Path(__file__).resolve().parent.parent
SIGMA_RULES = ROOT.parent / "shared" / "datasets" / "sigma-rules" / "sigma-rules.tar.gz"
TECHNIQUES_FILE = PACKAGED_DIR / "techniques.yaml"
_TECHNIQUE_TAG = re.compile(r"^attack\.(t\d{4}(?:\.\d{3})?)$", re.I)
_TACTIC_TAG = re.compile(r"^attack\.([a-z]+(?:-[a-z]+)+|[a-z]{5,})$")
_ENTRY_LINE = re.compile(r"^  (T\d{4}(?:\.\d{3})?):")


def _rule_texts(rules: Path) -> Iterator[tuple[str, bytes]]:
    if rules.is_dir():
        for path in sorted(rules.rglob("*.y*ml")):
            yield str(path), path.read_bytes()
        return
    with tarfile.open(rules) as tarball:
        for member in tarball:
            if member.isfile() and member.name.endswith((".yml", ".yaml")):
                handle = tarball.extractfile(member)
                if handle is not None:
                    yield member.name, handle.read()


def sigma_techniques(rules: Path = SIGMA_RULES) -> dict[str, Counter[str]]:
    """Technique id (`T1003.001`) -> how often each tactic is declared on the rules tagging it."""
    found: dict[str, Counter[str]] = {}
    for _, text in _rule_texts(rules):
        for document in yaml.load_all(text, Loader=SafeLoader):
            if not isinstance(document, dict):
                continue
            tags = [str(t).strip().lower() for t in document.get("tags") or []]
            tactics = [m.group(1) for t in tags if (m := _TACTIC_TAG.match(t))]
            for tag in tags:
                if match := _TECHNIQUE_TAG.match(tag):
                    found.setdefault(match.group(1).upper(), Counter()).update(tactics)
    return found


def _sort_key(technique: str) -> tuple[int, ...]:
    return tuple(int(part) for part in technique[1:].split("."))


def new_entries(
    found: dict[str, Counter[str]], knowledge: Techniques
) -> dict[str, TechniqueEntry | str]:
    """An entry for each technique of `found` without one; a string (the problem) for a
    technique whose rules declare no tactic the knowledge knows and whose parent has no entry."""
    rank = {c: i for i, c in enumerate(knowledge.category_priority)}
    known = dict(knowledge.techniques)
    added: dict[str, TechniqueEntry | str] = {}
    for technique in sorted(found, key=_sort_key):
        if technique in known:
            continue
        parent = known.get(technique.split(".", 1)[0]) if "." in technique else None
        if parent is not None and not parent.inferred:
            # an analyst's decision about the technique holds for its sub-techniques
            added[technique] = TechniqueEntry(
                tactic=parent.tactic,
                weight=parent.weight,
                response=list(parent.response),
                inferred=True,
            )
            continue
        tactics = [(n, t) for t, n in found[technique].items() if t in knowledge.tactics]
        if tactics:
            tactic = min(
                tactics, key=lambda nt: (-nt[0], rank[knowledge.tactics[nt[1]].category], nt[1])
            )[1]
        elif parent is not None:
            tactic = parent.tactic
        else:
            added[technique] = "its rules declare no known tactic: write its entry by hand"
            continue
        category = knowledge.tactics[tactic].category
        entry = TechniqueEntry(
            tactic=tactic,
            weight=knowledge.tactics[tactic].weight,
            response=list(knowledge.category_response[category]),
            inferred=True,
        )
        added[technique] = known[technique] = entry
    return added


def _line(technique: str, entry: TechniqueEntry) -> str:
    response = ", ".join(kind.value for kind in entry.response)
    return (
        f"  {technique}: {{tactic: {entry.tactic}, weight: {entry.weight},"
        f" response: [{response}], inferred: true}}"
    )


def write_entries(path: Path, entries: dict[str, TechniqueEntry]) -> None:
    """Insert `entries` into the `techniques:` block of `path`, in id order; every other line of
    the file stays as written."""
    lines = path.read_text(encoding="utf-8").splitlines()
    start = lines.index("techniques:") + 1
    end = start
    while end < len(lines) and (lines[end].startswith("  ") or not lines[end].strip()):
        end += 1
    block = [line for line in lines[start:end] if line.strip()]
    present = {m.group(1) for line in block if (m := _ENTRY_LINE.match(line))}
    block += [_line(t, e) for t, e in entries.items() if t not in present]

    def key(line: str) -> tuple[int, ...]:
        match = _ENTRY_LINE.match(line)
        return _sort_key(match.group(1)) if match else (0,)

    lines[start:end] = sorted(block, key=key)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="ATT&CK coverage of the agents' knowledge")
    parser.add_argument("--rules", type=Path, default=SIGMA_RULES)
    parser.add_argument("--techniques", type=Path, default=TECHNIQUES_FILE)
    parser.add_argument("--check", action="store_true", help="list missing entries, write none")
    args = parser.parse_args(argv)
    knowledge = Techniques.model_validate(yaml.safe_load(args.techniques.read_text("utf-8")))
    added = new_entries(sigma_techniques(args.rules), knowledge)
    problems = {t: p for t, p in added.items() if isinstance(p, str)}
    entries = {t: e for t, e in added.items() if isinstance(e, TechniqueEntry)}
    for technique, problem in problems.items():
        print(f"{technique}: {problem}", file=sys.stderr)
    if args.check:
        for technique in entries:
            print(f"{technique}: no entry")
        return 1 if added else 0
    write_entries(args.techniques, entries)
    print(f"{len(entries)} entries added to {args.techniques}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
