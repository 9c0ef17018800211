"""What a refused request gets back, and the OpenAPI entries that promise it.

Every refusal is JSON with a `detail`: one sentence naming the problem, or, for a 422 from
validation, one entry per field. Each route lists the statuses it can answer (the edge can
answer 400 and 413 on any of them), so a schema-driven client can check every answer against
the document.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

# Patterns of what clients send back to us; anything else is refused (422) before it reaches the
# store or the audit log. Approval ids are `apr-<16 hex>` (orchestrator.workflows.gate), action
# hashes SHA-256 hex (tools.actions.action_hash); incident ids are printable ASCII without spaces
# (`<scope>--<correlation>` and the like), bounded well under the audit log's field limit.
APPROVAL_ID = r"^apr-[0-9a-f]{16}$"
ACTION_HASH = r"^[0-9a-f]{64}$"
INCIDENT_ID = r"^[!-~]{1,256}$"
MAX_INCIDENT_ID = 256


class FieldProblem(BaseModel):
    field: str
    problem: str


class Problem(BaseModel):
    """A refusal and why."""

    detail: str


class Invalid(BaseModel):
    """A request that failed validation: one entry per field."""

    detail: list[FieldProblem]


class DeadLettered(BaseModel):
    """A refused body of alerts, kept in the dead-letter table under this id."""

    detail: str
    dead_letter: int


_MEANING = {
    400: "malformed: a Content-Length that is not a number, a body that is not UTF-8 or JSON",
    401: "no valid credentials (a bearer token, or the sender's signature)",
    403: "the token lacks the scope, or this identity may not do this",
    404: "no such resource",
    409: "a conflict: already decided, expired, changed, or a replayed delivery",
    413: "the body is over this route's limit",
    422: "a field is invalid; `detail` names each one",
    429: "ingestion is behind; retry after `Retry-After` seconds",
    503: "Temporal or the store could not be reached: nothing was decided or changed; retry"
    " after `Retry-After` seconds",
}


def refusals(*statuses: int, **models: Any) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for these statuses, 400, 413 (the edge) and 503 (a store that cannot
    be reached) always included; `models` overrides a status's body model
    (`s422=Invalid | AlertsAccepted`)."""
    out: dict[int | str, dict[str, Any]] = {}
    for status in sorted({400, 413, 503, *statuses}):
        default = Invalid if status == 422 else Problem
        out[status] = {"model": models.get(f"s{status}", default), "description": _MEANING[status]}
    return out
