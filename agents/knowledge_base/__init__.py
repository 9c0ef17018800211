"""Garrison's analyst knowledge as versioned data: the YAML files beside this module (technique
weights and tactics, noisy detections, tradecraft patterns, process and path lists, the estate's
own machinery), validated and loaded once per process.

A team ships its own knowledge by pointing `GARRISON_KNOWLEDGE_DIR` at a folder holding a
`manifest.yaml` (its own version) and any of the other files: a file there replaces the packaged
file of the same name whole, and is validated the same way. Every triage records the version it
was decided under (`TriageResult.knowledge_version`). docs/knowledge.md says how to change them.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from agents.knowledge_base.schema import (
    FILES,
    Estate,
    Manifest,
    Network,
    Paths,
    Processes,
    Rules,
    Techniques,
    Tradecraft,
    Vulnerabilities,
)
from tools.yaml_safe import safe_load

PACKAGED_DIR = Path(__file__).parent
KNOWLEDGE_DIR_ENV = "GARRISON_KNOWLEDGE_DIR"

_M = TypeVar("_M", bound=BaseModel)


class KnowledgeError(Exception):
    """A knowledge file that cannot be used; the message is one line naming the file and field."""


@dataclass(frozen=True)
class Knowledge:
    """Every knowledge file, validated, and where each came from."""

    version: str
    override_dir: Path | None
    techniques: Techniques
    rules: Rules
    tradecraft: Tradecraft
    processes: Processes
    paths: Paths
    network: Network
    estate: Estate
    vulnerabilities: Vulnerabilities


def _read(path: Path, model: type[_M]) -> _M:
    try:
        raw = safe_load(path.read_text(encoding="utf-8"))
    except OSError as problem:
        raise KnowledgeError(f"{path}: cannot read knowledge file: {problem}") from None
    except yaml.YAMLError as problem:
        raise KnowledgeError(f"{path}: not valid YAML: {problem}".replace("\n", " ")) from None
    try:
        return model.model_validate(raw)
    except ValidationError as problem:
        first = problem.errors(include_url=False)[0]
        field = ".".join(str(p) for p in first["loc"])
        message = str(first["msg"]).removeprefix("Value error, ")
        raise KnowledgeError(f"{path}: {field + ': ' if field else ''}{message}") from None


def _source(name: str, override: Path | None) -> Path:
    if override is not None and (override / name).is_file():
        return override / name
    return PACKAGED_DIR / name


def _check_override(override: Path) -> None:
    if not override.is_dir():
        raise KnowledgeError(f"{KNOWLEDGE_DIR_ENV}={override}: not a directory")
    if not (override / "manifest.yaml").is_file():
        raise KnowledgeError(
            f"{override / 'manifest.yaml'}: missing: a knowledge folder names its own version"
        )
    for path in sorted(override.iterdir()):
        if path.suffix in (".yaml", ".yml") and path.name not in FILES:
            known = ", ".join(FILES)
            raise KnowledgeError(f"{path}: not a knowledge file (known: {known})")


@functools.cache
def load_knowledge(override: Path | None = None) -> Knowledge:
    """The packaged knowledge, with the files of `override` (a folder) in place of their
    namesakes. Cached: each folder is read and validated once per process."""
    if override is not None:
        _check_override(override)

    def read(name: str, model: type[_M]) -> _M:
        return _read(_source(name, override), model)

    return Knowledge(
        version=read("manifest.yaml", Manifest).version,
        override_dir=override,
        techniques=read("techniques.yaml", Techniques),
        rules=read("rules.yaml", Rules),
        tradecraft=read("tradecraft.yaml", Tradecraft),
        processes=read("processes.yaml", Processes),
        paths=read("paths.yaml", Paths),
        network=read("network.yaml", Network),
        estate=read("estate.yaml", Estate),
        vulnerabilities=read("vulnerabilities.yaml", Vulnerabilities),
    )


def configured_dir() -> Path | None:
    """The override folder named by `GARRISON_KNOWLEDGE_DIR`, if any. Read here rather than in
    the settings because the agents' tables are built when their module is imported, in every
    worker process; `orchestrator.settings` validates the same variable up front."""
    value = os.environ.get(KNOWLEDGE_DIR_ENV, "").strip()
    return Path(value).expanduser().resolve() if value else None


def knowledge() -> Knowledge:
    """The knowledge this process decides with."""
    return load_knowledge(configured_dir())


__all__ = ["KNOWLEDGE_DIR_ENV", "Knowledge", "KnowledgeError", "knowledge", "load_knowledge"]
