"""Garrison's own alert JSON: exactly `tools.models.Alert` (the recorded-incident alert format,
docs/ingestion.md). Validated by the model itself; its errors keep pydantic's field path
(`rule.uid`, `attacks[0].technique`). Over-long text is cut to the model's bounds first, as for
every shape. `source` is the alert's `product`; there is no correlation.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from pydantic import ValidationError

from orchestrator.ingest.normalised import Normalised, NormaliseError, Shape
from orchestrator.ingest.shapes.values import LONG, SHORT, Json, loc_path
from tools.models import Alert

FIELDS = frozenset(Alert.model_fields)
REQUIRED = frozenset(n for n, f in Alert.model_fields.items() if f.is_required())


def matches(record: Json) -> bool:
    keys = set(record)
    return REQUIRED <= keys <= FIELDS and isinstance(record.get("rule"), Mapping)


def normalise_garrison(record: Json) -> Normalised:
    try:
        # Strict, as JSON: no `false` taken for evidence id 0, no number for a time, no "12" for
        # a pid; what the OpenAPI document promises is exactly what is accepted.
        alert = Alert.model_validate_json(json.dumps(_bounded(record), default=str), strict=True)
    except ValidationError as error:
        first = error.errors()[0]
        raise NormaliseError(loc_path(first["loc"]), first["msg"]) from None
    return Normalised(alert=alert, source=alert.product, shape=Shape.GARRISON, original=record)


def _bounded(record: Json) -> dict[str, object]:
    """A shallow copy with every string where the model keeps text cut to its bound; anything
    else stays for the model to judge."""
    out = {k: _cut(v) for k, v in record.items()}
    if isinstance(rule := record.get("rule"), Mapping):
        out["rule"] = {k: _cut(v) for k, v in rule.items()}
    if isinstance(found := record.get("attacks"), list):
        out["attacks"] = [
            {k: _cut(v) for k, v in a.items()} if isinstance(a, Mapping) else a for a in found
        ]
    if isinstance(entities := record.get("entities"), Mapping):
        copied = {k: _cut(v) for k, v in entities.items()}
        if isinstance(process := entities.get("process"), Mapping):
            copied["process"] = {
                k: _cut(v, LONG if k == "cmd_line" else SHORT) for k, v in process.items()
            }
        if isinstance(file := entities.get("file"), Mapping):
            copied["file"] = {k: _cut(v) for k, v in file.items()}
        out["entities"] = copied
    return out


def _cut(value: object, limit: int = SHORT) -> object:
    return value[:limit] if isinstance(value, str) else value
