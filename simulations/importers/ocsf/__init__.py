"""Importer from OCSF 1.x findings and events to recorded incidents.

Detection Findings (class 2004; Security Findings, 2001, too) become alerts; raw events, OCSF event
classes or flat Windows/Sysmon events, become the telemetry, with OCSF fields mapped to the Sysmon
and Windows Security names the simulated tools read; the devices and users seen become the
environment. Findings are grouped into incident candidates by `orchestrator.ingest.grouping`
(same host or same user within a window), and a reviewed labels file says which groups are
incidents and what their truth is: groups without a label are listed, not written. One module
per role: `reader` (JSON lines and problems), `fields` (OCSF readers), `findings`, `events`,
`environment`, `labels`, `telemetry` (the cut), `attribution`, and `importer` (orchestration):

    garrison corpus import-ocsf findings.jsonl --events events.jsonl \\
        --labels labels.yaml --out simulations/incidents
"""

from simulations.importers.ocsf.importer import ImportResult, run
from simulations.importers.ocsf.reader import InputError

__all__ = ["ImportResult", "InputError", "run"]
