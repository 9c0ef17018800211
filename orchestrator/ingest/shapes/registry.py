"""The shapes in one table: how each is recognised and normalised, detection, and `normalise`,
the one entry every caller uses. A record that two shapes both claim is ambiguous: detection
gives None and the sender must name the shape (`?shape=`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from orchestrator.ingest.normalised import Normalised, NormaliseError, Shape
from orchestrator.ingest.shapes import (
    elastic,
    falcon,
    garrison,
    graph,
    ocsf,
    sentinel,
    sigma,
    splunk,
    suricata,
)
from orchestrator.ingest.shapes.values import Json, loc_path


@dataclass(frozen=True)
class ShapeReader:
    shape: Shape
    matches: Callable[[Json], bool]
    normalise: Callable[[Json], Normalised]


READERS = (
    ShapeReader(Shape.GARRISON, garrison.matches, garrison.normalise_garrison),
    ShapeReader(Shape.OCSF, ocsf.matches, ocsf.normalise_ocsf),
    ShapeReader(Shape.FALCON, falcon.matches, falcon.normalise_falcon),
    ShapeReader(Shape.GRAPH, graph.matches, graph.normalise_graph),
    ShapeReader(Shape.SENTINEL, sentinel.matches, sentinel.normalise_sentinel),
    ShapeReader(Shape.SPLUNK, splunk.matches, splunk.normalise_splunk),
    ShapeReader(Shape.ELASTIC, elastic.matches, elastic.normalise_elastic),
    ShapeReader(Shape.SURICATA, suricata.matches, suricata.normalise_suricata),
    ShapeReader(Shape.SIGMA, sigma.matches, sigma.normalise_sigma),
)
BY_SHAPE = {r.shape: r for r in READERS}
ACCEPTED = ", ".join(s.value for s in Shape)


def detect_shape(record: Mapping[str, Any]) -> Shape | None:
    """The one shape whose distinguishing fields the record has; None if none or several."""
    if not isinstance(record, Mapping):
        return None
    found = [r.shape for r in READERS if r.matches(record)]
    return found[0] if len(found) == 1 else None


def normalise(record: Mapping[str, Any], shape: Shape | None = None) -> Normalised:
    """The record as Garrison's alert, read as `shape` (detected when None). Any defect of the
    record, whatever it is, is a `NormaliseError` naming the field path in the sender's shape."""
    if not isinstance(record, Mapping):
        raise NormaliseError("", f"a record must be a JSON object, not {type(record).__name__}")
    if shape is None:
        found = [r.shape.value for r in READERS if r.matches(record)]
        if len(found) > 1:
            raise NormaliseError("", f"ambiguous alert shape: {' or '.join(found)}; name the shape")
        if not found:
            raise NormaliseError("", f"unknown alert shape: expected one of {ACCEPTED}")
        shape = Shape(found[0])
    try:
        return BY_SHAPE[Shape(shape)].normalise(record)
    except ValidationError as error:  # a model bound the shape did not foresee
        first = error.errors()[0]
        raise NormaliseError(loc_path(first["loc"]), first["msg"]) from None
