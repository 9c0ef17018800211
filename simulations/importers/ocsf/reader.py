"""Streaming JSON lines, and the error that carries every problem found in the input.

A line that is not a JSON object becomes a `Problem` naming `file:line`, never an exception, so one
run reports every bad line at once. Files ending in `.gz` are read through gzip.
"""

from __future__ import annotations

import gzip
import json
import zlib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO

from simulations.loader import Problem

MAX_PROBLEMS = 50  # per input file: enough to see the pattern, not a wall of text


class InputError(Exception):
    """Input the importer refuses; carries one problem per defect, nothing was written."""

    def __init__(self, problems: list[Problem], groups: list[str] | None = None) -> None:
        super().__init__("; ".join(str(p) for p in problems))
        self.problems = problems
        self.groups = groups or []  # the groups of findings, when a label did not fit them


def where(path: Path, line: int) -> str:
    return f"{path}:{line}"


def json_lines(path: Path, problems: list[Problem]) -> Iterator[tuple[int, Mapping[str, object]]]:
    """(1-based line number, object) for each non-blank line that is a JSON object."""
    try:
        with _open(path) as lines:
            for number, line in enumerate(lines, start=1):
                if not line.strip():
                    continue
                try:
                    value = json.loads(line)
                except json.JSONDecodeError as error:
                    note(problems, path, Problem(where(path, number), "", f"not JSON: {error.msg}"))
                    continue
                if not isinstance(value, dict):
                    note(problems, path, Problem(where(path, number), "", "not a JSON object"))
                    continue
                yield number, value
    except OSError as error:
        note(problems, path, Problem(str(path), "", f"unreadable: {error.strerror or error}"))
    except (EOFError, zlib.error, UnicodeDecodeError) as error:
        note(problems, path, Problem(str(path), "", f"unreadable: {error}"))


def note(problems: list[Problem], path: Path, problem: Problem) -> None:
    """Record `problem` about `path`, up to `MAX_PROBLEMS` per file, then say that more were cut."""
    file = str(path)
    same = sum(1 for p in problems if p.file == file or p.file.startswith(f"{file}:"))
    if same < MAX_PROBLEMS:
        problems.append(problem)
    elif same == MAX_PROBLEMS:
        problems.append(Problem(file, "", "more problems in this file are not shown"))


def _open(path: Path) -> IO[str]:
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8")
    return path.open(encoding="utf-8")
