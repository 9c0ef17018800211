"""A shadow run in simulation: each side replayed in a process of its own (`side.py`), the
current version with this process's environment, the candidate with its own on top, then
compared (`compare.py`) and both kept in the store's `simulation_runs` beside their scorecards.

A candidate is whatever differs in its process: a knowledge folder (`GARRISON_KNOWLEDGE_DIR`),
any other `GARRISON_*` setting (a risk policy, a routing file, a model), or another interpreter,
that is another installed Garrison (a branch's virtualenv with a new version of a playbook).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from simulations.shadow.compare import ShadowReport, compare_sides
from simulations.shadow.records import Role, ShadowSide

KNOWLEDGE_ENV = "GARRISON_KNOWLEDGE_DIR"
SETTINGS_PREFIX = "GARRISON_"
SIDE_SUFFIX: dict[Role, str] = {"current": "current", "candidate": "candidate"}


class ShadowError(Exception):
    """A candidate that cannot be run, or a side that failed; the message is one line."""


@dataclass(frozen=True)
class Candidate:
    knowledge_dir: Path | None = None
    python: Path | None = None  # None: this interpreter, so this installed Garrison
    settings: Mapping[str, str] = field(default_factory=dict)  # GARRISON_* on top

    def overrides(self) -> dict[str, str]:
        """Every setting the candidate's process gets on top of the current one's."""
        found = dict(self.settings)
        if self.knowledge_dir is not None:
            found[KNOWLEDGE_ENV] = str(self.knowledge_dir)
        return found

    def is_current(self) -> bool:
        return self.knowledge_dir is None and self.python is None and not self.settings


def parse_settings(items: Sequence[str]) -> dict[str, str]:
    """`NAME=VALUE` items, each NAME a `GARRISON_*` variable; ValueError naming a bad one."""
    found: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.startswith(SETTINGS_PREFIX) or name == SETTINGS_PREFIX:
            raise ValueError(f"--candidate-setting {item!r}: expected GARRISON_NAME=VALUE")
        found[name] = value
    return found


def check_candidate(candidate: Candidate) -> None:
    """Refuse a candidate that cannot run, naming what is wrong, before anything is replayed."""
    from orchestrator.settings import ConfigError, check_knowledge

    if candidate.is_current():
        raise ShadowError(
            "the candidate is the current version: give --candidate-knowledge, "
            "--candidate-setting or --candidate-python"
        )
    if candidate.knowledge_dir is not None:
        folder = candidate.knowledge_dir
        if not folder.is_dir():
            raise ShadowError(f"--candidate-knowledge {folder}: not a directory")
        try:
            check_knowledge(folder)
        except ConfigError as error:
            raise ShadowError(f"--candidate-knowledge: {error}") from None
    python = candidate.python
    if python is not None and not (python.is_file() and os.access(python, os.X_OK)):
        raise ShadowError(f"--candidate-python {python}: not an executable file")


def side_run_id(shadow_id: str, role: Role) -> str:
    return f"{shadow_id}-{SIDE_SUFFIX[role]}"


def run_side_process(
    role: Role,
    shadow_id: str,
    paths: Sequence[Path],
    *,
    python: Path | None = None,
    overrides: Mapping[str, str] | None = None,
    analyst: str | None = None,
    concurrency: int = 4,
) -> dict[str, Any]:
    """Run one side in its own process; its `{"side", "scorecard"}` document."""
    overrides = dict(overrides or {})
    env = dict(os.environ) | overrides
    if python is not None:
        # `-m` would put the working directory first on the path: a checkout of the current
        # version there would shadow the other install's modules
        env["PYTHONSAFEPATH"] = "1"
    with tempfile.TemporaryDirectory(prefix="garrison-shadow-") as folder:
        out = Path(folder) / f"{role}.json"
        command = [str(python or sys.executable), "-m", "simulations.shadow.side"]
        command += ["--role", role, "--run-id", side_run_id(shadow_id, role), "--out", str(out)]
        command += ["--concurrency", str(concurrency)]
        command += ["--analyst", analyst] if analyst else []
        command += [f"--override={name}={value}" for name, value in overrides.items()]
        command += [str(p) for p in paths]
        # an argv list, no shell: the interpreter is the operator's own --candidate-python
        done = subprocess.run(  # noqa: S603
            command, env=env, capture_output=True, text=True, check=False
        )
        if done.returncode != 0 or not out.is_file():
            lines = [line for line in done.stderr.splitlines() if line.strip()]
            last = lines[-1] if lines else f"exit status {done.returncode}"
            raise ShadowError(f"the {role} side failed: {last}")
        return json.loads(out.read_text(encoding="utf-8"))


def shadow_label(shadow_id: str, role: Role, paths: Sequence[Path], candidate: Candidate) -> str:
    """The kept run's label: `shadow <id> <role>: <paths> [what the candidate changes]`."""
    words = [f"shadow {shadow_id} {role}:", *(str(p) for p in paths)]
    if role == "candidate":
        words += [f"{k}={v}" for k, v in candidate.overrides().items()]
        words += [f"python={candidate.python}"] if candidate.python else []
    return " ".join(words)


def report_of(shadow_id: str, documents: Mapping[Role, Mapping[str, Any]]) -> ShadowReport:
    """The agreement report of two kept (or just written) side documents."""
    current = ShadowSide.model_validate(documents["current"]["side"])
    candidate = ShadowSide.model_validate(documents["candidate"]["side"])
    return compare_sides(shadow_id, current, candidate)
