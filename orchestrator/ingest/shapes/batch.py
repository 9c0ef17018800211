"""One request body as records: a single record, a JSON array of them, or a vendor's envelope.

Envelopes unwrapped: Falcon's `{"resources": [...]}`, Graph's and Sentinel's `{"value": [...]}`,
an Elasticsearch search response `{"hits": {"hits": [{"_source": {...}}]}}`, and the Sentinel
automation (Logic App) trigger `{"object": {...incident...}, "objectSchemaType": "Incident"}`.
A Splunk webhook (`result`, `sid`, `search_name`...) is one record as it stands. The records are
not read here; a record that is not an object is an error naming its index.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from orchestrator.ingest.normalised import NormaliseError
from orchestrator.ingest.shapes.values import kind

ARRAY_ENVELOPES = ("resources", "value")  # Falcon; Graph and Sentinel (OData)


def split_batch(body: object) -> list[Mapping[str, Any]]:
    """The records of one request body, in order."""
    if isinstance(body, list):
        return _records(body, "")
    if not isinstance(body, Mapping):
        raise NormaliseError("", f"expected a JSON object or array of alerts, got {kind(body)}")
    for key in ARRAY_ENVELOPES:
        if isinstance(body.get(key), list) and _envelope_only(body, key):
            return _records(body[key], key)
    hits = body.get("hits")
    if isinstance(hits, Mapping) and isinstance(hits.get("hits"), list):
        return _sources(hits["hits"])
    incident = body.get("object")
    if body.get("objectSchemaType") == "Incident" and isinstance(incident, Mapping):
        return [incident]
    return [body]


def _envelope_only(body: Mapping[str, Any], key: str) -> bool:
    """`value`/`resources` holds the records only when the rest is paging and metadata: a record
    that happens to have a `value` array is a record."""
    others = [k for k in body if k != key]
    return all(
        isinstance(k, str) and (k.startswith("@odata.") or k in {"meta", "errors"}) for k in others
    )


def _records(items: list[Any], where: str) -> list[Mapping[str, Any]]:
    for i, item in enumerate(items):
        if not isinstance(item, Mapping):
            raise NormaliseError(f"{where}[{i}]", f"expected an alert object, got {kind(item)}")
    return list(items)


def _sources(hits: list[Any]) -> list[Mapping[str, Any]]:
    records = []
    for i, hit in enumerate(hits):
        source = hit.get("_source") if isinstance(hit, Mapping) else None
        if not isinstance(source, Mapping):
            raise NormaliseError(
                f"hits.hits[{i}]._source", f"expected an object, got {kind(source)}"
            )
        records.append(source)
    return records
