"""Reading a CACAO document: JSON, then the CACAO v2.0 JSON schema subset shipped beside this
module, then the references between its parts. Every problem is a `CacaoError` naming the file
and the JSON path, never a traceback."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema

SCHEMA_FILE = Path(__file__).with_name("cacao-v2.schema.json")


class CacaoError(ValueError):
    """A CACAO document Garrison cannot read or run; the message names where and what."""


@cache
def cacao_schema() -> dict[str, Any]:
    return json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))


def read_document(path: Path) -> dict[str, Any]:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise CacaoError(f"{path}: cannot read ({error.strerror or error})") from None
    except UnicodeDecodeError:
        raise CacaoError(f"{path}: not UTF-8 text") from None
    except json.JSONDecodeError as error:
        raise CacaoError(f"{path}:{error.lineno}: not JSON ({error.msg})") from None
    check_document(document, str(path))
    return document


def schema_problems(document: Any) -> list[str]:
    """Every way `document` breaks the schema, as `$.json.path: message` lines."""
    validator = jsonschema.Draft202012Validator(cacao_schema())
    problems = []
    for error in sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path)):
        where = "$" + "".join(
            f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path
        )
        problems.append(f"{where}: {_message(error)}")
    return problems


def _message(error: jsonschema.ValidationError) -> str:
    if error.validator == "oneOf" and isinstance(error.instance, dict):
        return f"not a valid {error.instance.get('type', 'workflow')!s} step"
    return error.message


def check_document(document: Any, source: str) -> None:
    problems = schema_problems(document)
    if not problems:
        problems = _reference_problems(document)
    if problems:
        raise CacaoError(f"{source}: " + "; ".join(problems[:5]))


def _reference_problems(document: dict[str, Any]) -> list[str]:
    workflow: dict[str, Any] = document["workflow"]
    problems = []
    if document["workflow_start"] not in workflow:
        problems.append(f"$.workflow_start: {document['workflow_start']} is not in the workflow")
    agents = document.get("agent_definitions", {})
    targets = document.get("target_definitions", {})
    for step_id, step in workflow.items():
        for key in ("on_completion", "on_success", "on_failure", "on_true", "on_false"):
            if key in step and step[key] not in workflow:
                problems.append(f"$.workflow.{step_id}.{key}: {step[key]} is not in the workflow")
        for index, nxt in enumerate(step.get("next_steps", [])):
            if nxt not in workflow:
                problems.append(f"$.workflow.{step_id}.next_steps[{index}]: {nxt} is not a step")
        if "agent" in step and step["agent"] not in agents:
            problems.append(f"$.workflow.{step_id}.agent: {step['agent']} is not defined")
        for index, target in enumerate(step.get("targets", [])):
            if target not in targets:
                problems.append(f"$.workflow.{step_id}.targets[{index}]: {target} is not defined")
    return problems
