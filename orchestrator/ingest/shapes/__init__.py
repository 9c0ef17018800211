"""Alert shapes for live ingestion: each vendor's record read as Garrison's `Alert`.

One module per shape (`garrison`, `ocsf`, `falcon`, `graph`, `sentinel`, `splunk`, `elastic`,
`suricata`, `sigma`), each with `matches` (its distinguishing fields) and a normaliser whose
docstring says where every alert field comes from; `values` holds the readers they share,
`batch` splits a request body into records, and `registry` detects and dispatches. Every string
read is attacker-controlled: it is typed, bounded (cut to the model's length, never rejected for
length) and never interpreted. Any defect of a record is a `NormaliseError` naming the field path
in the sender's shape; nothing else escapes, whatever the JSON.

    records = split_batch(body)
    items = [normalise(r, shape) for r in records]  # shape None: detected per record
"""

from orchestrator.ingest.normalised import Normalised, NormaliseError, Shape
from orchestrator.ingest.shapes.batch import split_batch
from orchestrator.ingest.shapes.ocsf import alert_to_ocsf
from orchestrator.ingest.shapes.registry import detect_shape, normalise

__all__ = [
    "NormaliseError",
    "Normalised",
    "Shape",
    "alert_to_ocsf",
    "detect_shape",
    "normalise",
    "split_batch",
]
