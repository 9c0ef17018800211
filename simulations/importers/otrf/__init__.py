"""Importer from OTRF Security-Datasets recordings to recorded incidents.

Alerts come from each dataset's precomputed `sigma_alerts.jsonl` (SigmaHQ rule hits with their
matching line numbers); labels never come from code but from a reviewed YAML file that says which
alerts form each incident and what the truth is. The output is deterministic: same inputs, same
bytes. One module per role: `events` (reading the three event shapes), `labels`, `entities`,
`alerts`, `telemetry` (trimming), `environment`, `attribution`, and `importer` (orchestration and
the command line):

    python -m simulations.importers.otrf --labels simulations/labels/starter.yaml \
        --datasets /work/shared/datasets/otrf --out simulations/incidents
"""

from simulations.importers.otrf.entities import entities
from simulations.importers.otrf.events import normalise
from simulations.importers.otrf.importer import build_incident, main, run, write_incident

__all__ = ["build_incident", "entities", "main", "normalise", "run", "write_incident"]
