"""Importer from OTRF Security-Datasets recordings to recorded incidents.

Alerts come from SigmaHQ rules run over the raw events (`simulations.importers.sigma`; the
dataset's precomputed `sigma_alerts.jsonl` serves to check them); the matched events are grouped
into incidents by Garrison's rule (`grouping`); labels never come from code but from a reviewed
YAML file that names each incident's group and says what the truth is. The output is
deterministic: same inputs, same bytes. One module per role: `events` (reading the three event
shapes), `labels`, `entities`, `alerts`, `grouping`, `telemetry` (trimming), `environment`,
`attribution`, and `importer` (orchestration and the command line):

    python -m simulations.importers.otrf --labels simulations/labels/starter.yaml \
        --datasets /work/shared/datasets/otrf --out simulations/incidents
"""

from simulations.importers.otrf.entities import entities
from simulations.importers.otrf.events import normalise
from simulations.importers.otrf.importer import build_incident, main, run, write_incident

__all__ = ["build_incident", "entities", "main", "normalise", "run", "write_incident"]
