"""Backends that serve each incident the in-memory twins seeded from its recording.

Incident ids of a replay end in `--<recorded incident id>`, so a separate `garrison worker`
process given the same corpus routes an incident to the same recording. With a journal folder the
twins record their state changes in one file per recording, shared by every process, so a vendor's
state survives a killed worker as a real vendor's would.
"""

from __future__ import annotations

from pathlib import Path

from simulations.backends import memory_backends
from simulations.loader import LoadedIncident
from tools.journal import FileJournal, StateJournal, TwinFaults
from tools.toolsets import ReadTools, ResponseTools


def recorded_id(incident_id: str) -> str:
    return incident_id.rsplit("--", 1)[-1]


class RecordedBackends:
    def __init__(
        self,
        incidents: list[LoadedIncident],
        journal_dir: Path | None = None,
        faults: TwinFaults | None = None,
    ) -> None:
        self._incidents = {loaded.spec.id: loaded for loaded in incidents}
        self._journal_dir = journal_dir
        self._faults = faults
        self._tools: dict[str, tuple[ReadTools, ResponseTools]] = {}

    def _for(self, incident_id: str) -> tuple[ReadTools, ResponseTools]:
        if incident_id not in self._tools:
            loaded = self._incidents.get(recorded_id(incident_id))
            if loaded is None:
                raise KeyError(f"no recorded incident serves incident {incident_id}")
            journal: StateJournal | None = None
            if self._journal_dir is not None:
                journal = FileJournal(self._journal_dir / f"{incident_id}.jsonl")
            self._tools[incident_id] = memory_backends(
                loaded.spec.environment, loaded.telemetry(), journal=journal, faults=self._faults
            )
        return self._tools[incident_id]

    def read_tools(self, incident_id: str) -> ReadTools:
        return self._for(incident_id)[0]

    def response_tools(self, incident_id: str) -> ResponseTools:
        return self._for(incident_id)[1]
