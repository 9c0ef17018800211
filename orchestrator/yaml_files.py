"""Operator-maintained YAML files read into pydantic models, with one-line errors naming the file
and the field (the approver directory, the API tokens)."""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from tools.yaml_safe import safe_load

_M = TypeVar("_M", bound=BaseModel)


def load_yaml_model(
    model: type[_M], path: Path, error: type[Exception], what: str, *, empty_ok: bool = False
) -> _M:
    """`path` parsed as `model`; `error` (one line: file, field, problem) otherwise."""
    try:
        raw = safe_load(path.read_text(encoding="utf-8"))
    except OSError as problem:
        raise error(f"{path}: cannot read {what}: {problem}") from None
    except yaml.YAMLError as problem:
        raise error(f"{path}: not valid YAML: {problem}") from None
    try:
        return model.model_validate({} if raw is None and empty_ok else raw)
    except ValidationError as problem:
        first = problem.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "(top level)"
        raise error(f"{path}: {field}: {first['msg']}") from None
