"""The in-memory EDR twin: reads answered from a recording's telemetry, containment state kept in a
`StateJournal`.

The twin knows the hosts of the environment and those that sent telemetry (a sensor is an
enrolment). A recording says nothing of installed software, so a host reports every CVE open
until a patch for it is applied (as a persistence artefact is present until removed). Network
sensors (Zeek) record no host, so their connections are shown on the hosts whose addresses they
involve. A process seen in the telemetry (itself or as a parent) is running
until killed; a persistence artefact is present until removed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

from tools.edr.patch_ids import checked
from tools.errors import NotFoundError
from tools.inventory.memory import find_asset
from tools.journal import StateJournal, TwinFaults, TwinRuntime
from tools.models import Asset, Environment
from tools.names import host_key
from tools.results import (
    AccountEvent,
    Change,
    EventList,
    FileEvent,
    HostInfo,
    LogonEvent,
    NetworkConnection,
    ProcessEvent,
    RegistryEvent,
    SystemEvent,
)
from tools.telemetry import Telemetry


class _Timed(Protocol):
    @property
    def time(self) -> datetime: ...


_E = TypeVar("_E", bound=_Timed)

# (on, off) op pairs of the two-state targets.
_CONTAINED = ("isolate_host", "release_host")
_QUARANTINED = ("quarantine_file", "restore_file")
_PATCHED = ("patch", "unpatch")


class InMemoryEdr:
    """Implements `EdrReader`, `EdrResponder` and `PatchResponder`."""

    def __init__(
        self,
        environment: Environment | None = None,
        events: Iterable[Mapping[str, Any]] = (),
        journal: StateJournal | None = None,
        faults: TwinFaults | None = None,
        *,
        telemetry: Telemetry | None = None,
    ) -> None:
        self._environment = environment or Environment()
        self._telemetry = telemetry if telemetry is not None else Telemetry.from_events(events)
        self._runtime = TwinRuntime(journal, faults)
        self._sensors: dict[str, str] = {}
        hosted = [
            *self._telemetry.processes,
            *self._telemetry.logons,
            *self._telemetry.registry,
            *self._telemetry.files,
            *[e for e in self._telemetry.accounts if e.host],
            *self._telemetry.system,
        ]
        for event in hosted:
            if event.host:
                self._sensors.setdefault(host_key(event.host), event.host)
        for connection in self._telemetry.connections:
            if connection.host:
                self._sensors.setdefault(host_key(connection.host), connection.host)

    # --- reads --------------------------------------------------------------------------------

    async def find_host(self, host: str) -> HostInfo | None:
        self._runtime.call("find_host")
        try:
            host_id = self._host_id(host)
        except NotFoundError:
            return None
        asset = self._asset(host_id)
        return HostInfo(
            id=host_id,
            hostname=asset.hostname if asset else None,
            ips=list(asset.ips) if asset else [],
            os=asset.os if asset else None,
            contained=self._runtime.latest(host_id, *_CONTAINED),
        )

    async def process_events(
        self,
        host: str,
        start: datetime | None = None,
        end: datetime | None = None,
        limit: int = 500,
    ) -> EventList[ProcessEvent]:
        self._runtime.call("process_events")
        key = host_key(self._host_id(host))
        events = [e for e in self._telemetry.processes if host_key(e.host) == key]
        return _window(events, start, end, limit)

    async def network_connections(
        self,
        host: str,
        start: datetime | None = None,
        end: datetime | None = None,
        limit: int = 500,
    ) -> EventList[NetworkConnection]:
        self._runtime.call("network_connections")
        host_id = self._host_id(host)
        key = host_key(host_id)
        asset = self._asset(host_id)
        ips = set(asset.ips) if asset else set()
        events = [
            c
            for c in self._telemetry.connections
            if (c.host is not None and host_key(c.host) == key)
            or (c.host is None and (c.src_ip in ips or c.dst_ip in ips))
        ]
        return _window(events, start, end, limit)

    async def logons(
        self,
        host: str,
        start: datetime | None = None,
        end: datetime | None = None,
        limit: int = 500,
    ) -> EventList[LogonEvent]:
        self._runtime.call("logons")
        key = host_key(self._host_id(host))
        events = [e for e in self._telemetry.logons if host_key(e.host) == key]
        return _window(events, start, end, limit)

    async def registry_events(
        self,
        host: str,
        start: datetime | None = None,
        end: datetime | None = None,
        limit: int = 500,
    ) -> EventList[RegistryEvent]:
        self._runtime.call("registry_events")
        key = host_key(self._host_id(host))
        events = [e for e in self._telemetry.registry if host_key(e.host) == key]
        return _window(events, start, end, limit)

    async def file_events(
        self,
        host: str,
        start: datetime | None = None,
        end: datetime | None = None,
        limit: int = 500,
    ) -> EventList[FileEvent]:
        self._runtime.call("file_events")
        key = host_key(self._host_id(host))
        events = [e for e in self._telemetry.files if host_key(e.host) == key]
        return _window(events, start, end, limit)

    async def account_events(
        self,
        host: str,
        start: datetime | None = None,
        end: datetime | None = None,
        limit: int = 500,
    ) -> list[AccountEvent]:
        self._runtime.call("account_events")
        key = host_key(self._host_id(host))
        events = [e for e in self._telemetry.accounts if e.host and host_key(e.host) == key]
        return _window(events, start, end, limit)

    async def system_events(
        self,
        host: str,
        start: datetime | None = None,
        end: datetime | None = None,
        limit: int = 500,
    ) -> list[SystemEvent]:
        self._runtime.call("system_events")
        key = host_key(self._host_id(host))
        events = [e for e in self._telemetry.system if host_key(e.host) == key]
        return _window(events, start, end, limit)

    # --- containment --------------------------------------------------------------------------

    async def is_contained(self, host: str) -> bool:
        self._runtime.call("is_contained")
        return self._runtime.latest(self._host_id(host), *_CONTAINED)

    async def isolate_host(self, host: str) -> Change:
        return await self._runtime.flip(
            "isolate_host", self._host_id(host), *_CONTAINED, "isolated"
        )

    async def release_host(self, host: str) -> Change:
        return await self._runtime.flip(
            "release_host", self._host_id(host), *_CONTAINED, "released"
        )

    async def is_process_running(self, host: str, pid: int) -> bool:
        self._runtime.call("is_process_running")
        return self._running(self._host_id(host), pid)

    async def kill_process(self, host: str, pid: int) -> Change:
        self._runtime.call("kill_process")
        host_id = self._host_id(host)
        if not self._running(host_id, pid):
            return Change(applied=False, detail=f"already not running: process {pid}")
        await self._runtime.record("kill_process", f"{host_id}:{pid}")
        return Change(applied=True, detail=f"killed process {pid}")

    async def is_file_quarantined(self, host: str, file: str) -> bool:
        self._runtime.call("is_file_quarantined")
        target = _on(self._host_id(host), file)
        return self._runtime.latest(target, *_QUARANTINED)

    async def quarantine_file(self, host: str, file: str) -> Change:
        target = _on(self._host_id(host), file)
        return await self._runtime.flip("quarantine_file", target, *_QUARANTINED, "quarantined")

    async def restore_file(self, host: str, file: str) -> Change:
        target = _on(self._host_id(host), file)
        return await self._runtime.flip("restore_file", target, *_QUARANTINED, "restored")

    async def is_persistence_present(self, host: str, artefact: str) -> bool:
        self._runtime.call("is_persistence_present")
        target = _on(self._host_id(host), artefact)
        return not self._runtime.changes_of(target, "remove_persistence")

    async def remove_persistence(self, host: str, artefact: str) -> Change:
        self._runtime.call("remove_persistence")
        target = _on(self._host_id(host), artefact)
        if self._runtime.changes_of(target, "remove_persistence"):
            return Change(applied=False, detail="already removed")
        await self._runtime.record("remove_persistence", target)
        return Change(applied=True, detail="removed")

    # --- patching (a host reports a CVE open until a fix is applied for it) --------------------

    async def is_vulnerable(self, host: str, cve: str) -> bool:
        self._runtime.call("is_vulnerable")
        cve, _ = checked("memory", cve)
        return not self._runtime.latest(_on(self._host_id(host), cve), *_PATCHED)

    async def apply_patch(self, host: str, cve: str, remediation: str) -> Change:
        cve, fix = checked("memory", cve, remediation)
        target = _on(self._host_id(host), cve)
        return await self._runtime.flip("patch", target, *_PATCHED, f"patched ({fix})")

    async def revert_patch(self, host: str, cve: str, remediation: str) -> Change:
        cve, fix = checked("memory", cve, remediation)
        target = _on(self._host_id(host), cve)
        return await self._runtime.flip("unpatch", target, *_PATCHED, f"reverted ({fix})")

    # --- helpers ------------------------------------------------------------------------------

    def _host_id(self, host: str) -> str:
        """The environment's asset id, else the sensor's name; NotFoundError for neither."""
        asset = self._asset(host)
        if asset is not None:
            return asset.id
        sensor = self._sensors.get(host_key(host))
        if sensor is None:
            raise NotFoundError(f"no host {host!r} is known to the EDR")
        return sensor

    def _asset(self, host: str) -> Asset | None:
        return find_asset(self._environment, host)

    def _running(self, host_id: str, pid: int) -> bool:
        key = host_key(host_id)
        seen = any(
            pid in (e.pid, e.parent_pid) and host_key(e.host) == key
            for e in self._telemetry.processes
        ) or any(
            c.pid == pid and c.host is not None and host_key(c.host) == key
            for c in self._telemetry.connections
        )
        return seen and not self._runtime.changes_of(f"{host_id}:{pid}", "kill_process")


def _on(host_id: str, thing: str) -> str:
    """`<asset id>:<thing>`; paths and hashes compare case-insensitively on Windows."""
    return f"{host_id}:{thing.strip().lower()}"


def _window(
    events: Sequence[_E], start: datetime | None, end: datetime | None, limit: int
) -> EventList[_E]:
    """The first `limit` events of the window, oldest first, saying whether more were left."""
    start, end = _aware(start), _aware(end)
    chosen = [
        e for e in events if (start is None or e.time >= start) and (end is None or e.time <= end)
    ]
    kept = max(limit, 0)
    return EventList(sorted(chosen, key=lambda e: e.time)[:kept], truncated=len(chosen) > kept)


def _aware(moment: datetime | None) -> datetime | None:
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)
