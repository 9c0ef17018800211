"""Where activities get their tools: a composition root hands the worker one `Backends`.

Production serves one set of vendor adapters to every incident; a simulation serves each incident
the in-memory twins seeded from its recording.
"""

from __future__ import annotations

from typing import Protocol

from tools.toolsets import ReadTools, ResponseTools


class Backends(Protocol):
    def read_tools(self, incident_id: str) -> ReadTools: ...

    def response_tools(self, incident_id: str) -> ResponseTools: ...


def workflow_id(incident_id: str) -> str:
    return f"incident-{incident_id}"
