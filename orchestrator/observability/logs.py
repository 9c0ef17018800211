"""Garrison's logging: readable text by default, one JSON object per line with
`GARRISON_LOG_FORMAT=json`; in both, every secret this process knows is replaced before a line is
written.

A JSON line holds `time`, `level`, `logger`, `message`, and where known `incident_id`,
`workflow_id`, `run_id`, `activity` (inside a Temporal activity, or from the SDK's own records),
`trace_id` and `span_id` (the current OpenTelemetry span), and `error` (a failure's type and
message; with `GARRISON_DEBUG=1` its traceback as well).

Secrets: `protect(model)` registers every `SecretStr` of a settings model (Garrison's settings,
each vendor's, the webhook sources'), and the handler's formatter replaces each of them in the
finished line, its exception text included, so no code path can log one, whatever it formats.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import IO, TypeVar

from pydantic import BaseModel, SecretStr

M = TypeVar("M", bound=BaseModel)
REDACTED = "[redacted]"
MIN_SECRET = 4  # shorter values would redact ordinary words
TEXT_FORMAT = "%(levelname)s %(name)s: %(message)s"
INCIDENT_PREFIX = "incident-"  # `orchestrator.backends.workflow_id`
_secrets: set[str] = set()


def protect(model: BaseModel | None) -> None:
    """Register every secret of `model` (and of the models inside it) for redaction."""
    if model is not None:
        protect_values(_secret_values(model))


def protected(model: M) -> M:
    """`model`, its secrets registered (`protect`)."""
    protect(model)
    return model


def protect_values(values: Iterable[str]) -> None:
    _secrets.update(v for v in values if len(v) >= MIN_SECRET)


def redact(text: str) -> str:
    for secret in sorted(_secrets, key=len, reverse=True):  # a secret inside another: longest
        if secret in text:
            text = text.replace(secret, REDACTED)
    return text


def _secret_values(value: object) -> list[str]:
    if isinstance(value, SecretStr):
        return [value.get_secret_value()]
    if isinstance(value, BaseModel):
        return [
            s for name in type(value).model_fields for s in _secret_values(getattr(value, name))
        ]
    if isinstance(value, dict):
        return [s for item in value.values() for s in _secret_values(item)]
    if isinstance(value, list | tuple):
        return [s for item in value for s in _secret_values(item)]
    return []


class _Context(logging.Filter):
    """Adds the incident, workflow, activity and trace a record was written in, where known."""

    def filter(self, record: logging.LogRecord) -> bool:
        found: dict[str, str] = {}
        temporal = getattr(record, "temporal_activity", None) or getattr(
            record, "temporal_workflow", None
        )
        if isinstance(temporal, dict):
            found["workflow_id"] = str(temporal.get("workflow_id", ""))
            found["run_id"] = str(temporal.get("run_id") or temporal.get("workflow_run_id") or "")
            if "activity_type" in temporal:
                found["activity"] = str(temporal["activity_type"])
        elif (
            module := sys.modules.get("temporalio.activity")
        ) is not None and module.in_activity():
            info = module.info()
            found |= {
                "workflow_id": info.workflow_id or "",
                "run_id": info.workflow_run_id or "",
                "activity": info.activity_type,
            }
        workflow = found.get("workflow_id", "")
        if workflow.startswith(INCIDENT_PREFIX):
            found["incident_id"] = workflow.removeprefix(INCIDENT_PREFIX)
        if (trace := sys.modules.get("opentelemetry.trace")) is not None:
            span = trace.get_current_span().get_span_context()
            if span.is_valid:
                found["trace_id"] = format(span.trace_id, "032x")
                found["span_id"] = format(span.span_id, "016x")
        for key, value in found.items():
            if value and not hasattr(record, key):
                setattr(record, key, value)
        return True


class TextFormatter(logging.Formatter):
    """`LEVEL logger: message [incident=... trace=...]`, one line (tracebacks summarised as
    `Type: message` unless `GARRISON_DEBUG` is set), secrets replaced."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        line = _one_line(record) if not os.environ.get("GARRISON_DEBUG") else None
        text = line if line is not None else super().format(record)
        where = " ".join(
            f"{label}={getattr(record, key)}"
            for key, label in (("incident_id", "incident"), ("trace_id", "trace"))
            if getattr(record, key, None)
        )
        return redact(f"{text} [{where}]" if where else text)


class JsonFormatter(logging.Formatter):
    FIELDS = ("incident_id", "workflow_id", "run_id", "activity", "trace_id", "span_id")

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry |= {key: getattr(record, key) for key in self.FIELDS if getattr(record, key, None)}
        if record.exc_info and record.exc_info[1] is not None:
            error = record.exc_info[1]
            cause = error.__cause__ or error
            entry["error"] = f"{type(cause).__name__}: {cause}"
            if os.environ.get("GARRISON_DEBUG"):
                entry["traceback"] = self.formatException(record.exc_info)
        return redact(json.dumps(entry, ensure_ascii=False, default=str))


def _one_line(record: logging.LogRecord) -> str | None:
    if not (record.exc_info and record.exc_info[1] is not None):
        return None
    error = record.exc_info[1]
    cause = error.__cause__ or error
    return (
        f"{record.levelname} {record.name}: {record.getMessage()}: {type(cause).__name__}: {cause}"
    )


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A handler on whatever `sys.stderr` is when it writes, not when it was made: a command run
    in-process (a test's CliRunner swaps stderr, then closes its own) leaves no handler on a
    closed stream for the next one."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property  # type: ignore[override]
    def stream(self) -> IO[str]:
        return sys.stderr

    @stream.setter
    def stream(self, _value: IO[str]) -> None:  # set by StreamHandler.__init__: ignored
        pass


def configure(
    log_format: str = "text", level: int | str = logging.WARNING, stream: IO[str] | None = None
) -> None:
    """Replace the root logger's handlers with one on `stream` (stderr) in `log_format`."""
    handler = logging.StreamHandler(stream) if stream is not None else _StderrHandler()
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    handler.addFilter(_Context())
    logging.basicConfig(level=level, handlers=[handler], force=True)
