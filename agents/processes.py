"""Process identity: which process an event, an alert or a child's parent field means.

Windows reuses process ids, within minutes on a busy host: a recording can hold an updater and,
later, a payload under the same pid. A pid alone therefore names no process; a process is its
host, pid, start time and image (`ProcessKey`), and Sysmon's ProcessGuid names one exactly.

When an event carries only a pid (a connection, a registry or file write, an alert, a child's
parent pid), the process it means is the one with that pid on that host that had started by the
event's time: of the records with that pid, the latest that started at or before the event
(`ProcessTable.at`), never the first one seen. A record that starts up to `CLOCK_SKEW` after the
event is still taken when none started before it: an alert stamped by another clock than the
process record's. Two records of one start (Sysmon 1 and Security 4688 of the same process, a
moment apart) are one process: the richer record stands for both.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from agents.entities import host_key
from tools.results import ProcessEvent

CLOCK_SKEW = timedelta(seconds=2)
SAME_START = timedelta(seconds=2)  # two records of one pid and image this close are one start


@dataclass(frozen=True, order=True)
class ProcessKey:
    """One process: host (first label, lowercased), pid, start time and image (lowercased). The
    start is None for a process known only from an alert, whose record was not read."""

    host: str
    pid: int
    start: datetime | None
    image: str

    @classmethod
    def of(cls, record: ProcessEvent) -> ProcessKey:
        return cls(
            host=host_key(record.host),
            pid=record.pid if record.pid is not None else -1,
            start=record.time,
            image=(record.image or record.name or "").strip().lower(),
        )

    @classmethod
    def unrecorded(cls, host: str, pid: int, image: str | None) -> ProcessKey:
        return cls(host=host_key(host), pid=pid, start=None, image=(image or "").strip().lower())

    def label(self, host: str) -> str:
        """`<host>:<pid>`, the form actions and reports name a process by (a kill is by pid)."""
        return f"{host}:{self.pid}"


def _name(path: str) -> str:
    """The file name of an image path; none for Sysmon's `<unknown process>`, which names no
    image but a process it could not resolve (the pid still names it)."""
    text = path.strip().lower()
    if text.startswith("<"):
        return ""
    return text.replace("/", "\\").rsplit("\\", 1)[-1]


def _image(record: ProcessEvent) -> str:
    return _name(record.image or record.name or "")


def _merged(first: ProcessEvent, second: ProcessEvent) -> ProcessEvent:
    """Two records of one start as one: the first's fields, the second's where the first has
    none (Sysmon gives the hash and guid, Security 4688 may give what Sysmon left out)."""
    missing = {k: v for k, v in second.model_dump().items() if getattr(first, k) is None}
    return first.model_copy(update=missing) if missing else first


class ProcessTable:
    """One host's process records, looked up by pid at a time, by ProcessGuid, and by kinship."""

    def __init__(self, records: Iterable[ProcessEvent]) -> None:
        by_pid: dict[int, list[ProcessEvent]] = defaultdict(list)
        for record in sorted(records, key=lambda r: r.time):
            if record.pid is None:
                continue
            starts = by_pid[record.pid]
            last = starts[-1] if starts else None
            if (
                last is not None
                and record.time - last.time <= SAME_START
                and _image(record) == _image(last)
            ):
                starts[-1] = _merged(last, record)
                continue
            starts.append(record)
        self._by_pid = dict(by_pid)
        self._starts = {pid: [r.time for r in rs] for pid, rs in self._by_pid.items()}
        self.records: list[ProcessEvent] = sorted(
            (r for rs in self._by_pid.values() for r in rs), key=lambda r: r.time
        )
        self._by_guid = {r.guid.lower(): r for r in self.records if r.guid}
        self._children: dict[ProcessKey, list[ProcessEvent]] = defaultdict(list)
        for record in self.records:
            parent = self.parent(record)
            if parent is not None:
                self._children[ProcessKey.of(parent)].append(record)

    def at(
        self,
        pid: int | None,
        when: datetime | None,
        guid: str | None = None,
        image: str | None = None,
    ) -> ProcessEvent | None:
        """The process that `pid` (or `guid`) named at `when`: the latest start at or before it,
        else one starting within CLOCK_SKEW after it; without a time, the latest start. An event
        that names its image (`image`) and another image than that process's was the doing of a
        process without a record here (started before the window): None."""
        if guid and (found := self._by_guid.get(guid.lower())) is not None:
            return found
        if pid is None or pid not in self._by_pid:
            return None
        records = self._by_pid[pid]
        found = None
        if when is None:
            found = records[-1]
        elif (index := bisect_right(self._starts[pid], when)) > 0:
            found = records[index - 1]
        elif records[0].time - when <= CLOCK_SKEW:
            found = records[0]
        if found is not None and _name(image or "") and _name(image or "") != _image(found):
            return None
        return found

    def get(self, key: ProcessKey) -> ProcessEvent | None:
        """The record of `key` (None for a process known only from an alert)."""
        if key.start is None:
            return None
        return next((r for r in self._by_pid.get(key.pid, []) if r.time == key.start), None)

    def canonical(self, record: ProcessEvent) -> ProcessEvent:
        """The table's record of the process `record` is a record of (the richer of two records
        of one start stands for both)."""
        found = self.at(record.pid, record.time, record.guid)
        return found if found is not None and _image(found) == _image(record) else record

    def key(self, record: ProcessEvent) -> ProcessKey:
        return ProcessKey.of(self.canonical(record))

    def parent(self, record: ProcessEvent) -> ProcessEvent | None:
        """The record of `record`'s parent: by ParentProcessGuid, else the process with the
        parent pid that had started when `record` did (never `record` itself)."""
        found = self.at(record.parent_pid, record.time, record.parent_guid)
        if found is None or ProcessKey.of(found) == self.key(record):
            return None
        return found

    def children(self, record: ProcessEvent) -> list[ProcessEvent]:
        return list(self._children.get(self.key(record), []))

    def owns(
        self,
        record: ProcessEvent,
        pid: int | None,
        when: datetime,
        guid: str | None = None,
        image: str | None = None,
    ) -> bool:
        """Whether an event stamped `pid` (`guid`, `image`) at `when` was `record`'s doing."""
        if pid is None or pid != record.pid:
            return False
        found = self.at(pid, when, guid, image)
        return found is not None and ProcessKey.of(found) == self.key(record)
