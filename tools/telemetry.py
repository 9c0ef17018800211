"""A recording mapped once, in time order: what the EDR readers and their twins answer from.

Raw events are flattened once (`tools.event_shapes`) and handed to the mappers
(`tools.event_mappers`, `tools.system_events`); what no mapper recognises is skipped.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tools.event_mappers import (
    account_event,
    to_file_event,
    to_logon_event,
    to_network_connection,
    to_process_event,
    to_registry_event,
)
from tools.event_shapes import FlatEvent, flatten
from tools.names import same_host
from tools.parents import unrecorded_parents
from tools.results import (
    AccountEvent,
    FileEvent,
    LogonEvent,
    NetworkConnection,
    ProcessEvent,
    RegistryEvent,
    SystemEvent,
)
from tools.system_events import to_system_event


@dataclass(frozen=True)
class Telemetry:
    """A recording mapped once: what the EDR readers answer from, in time order."""

    processes: list[ProcessEvent] = field(default_factory=list)
    connections: list[NetworkConnection] = field(default_factory=list)
    logons: list[LogonEvent] = field(default_factory=list)
    registry: list[RegistryEvent] = field(default_factory=list)
    files: list[FileEvent] = field(default_factory=list)
    accounts: list[AccountEvent] = field(default_factory=list)
    system: list[SystemEvent] = field(default_factory=list)

    @classmethod
    def from_events(cls, events: Iterable[Mapping[str, Any]]) -> Telemetry:
        telemetry = cls()
        for raw in events:
            if not isinstance(raw, Mapping):
                continue
            try:
                event = FlatEvent(flatten(raw))
                process = to_process_event(event)
                connection = None if process else to_network_connection(event)
                logon = None if process or connection else to_logon_event(event)
                registry = None if process or connection or logon else to_registry_event(event)
                file = None if process or connection or logon or registry else to_file_event(event)
                typed = process or connection or logon or registry or file
                account = None if typed else account_event(event)
                system = None if typed else to_system_event(event)
            except ValueError:  # a value pydantic refuses (pydantic's ValidationError included)
                continue
            if process:
                telemetry.processes.append(process)
            if connection:
                telemetry.connections.append(connection)
            if logon:
                telemetry.logons.append(logon)
            if registry:
                telemetry.registry.append(registry)
            if file:
                telemetry.files.append(file)
            if account:
                telemetry.accounts.append(account)
            if system:
                telemetry.system.append(system)
        telemetry.processes.sort(key=lambda e: e.time)
        telemetry.processes.extend(unrecorded_parents(telemetry.processes))
        telemetry.processes.sort(key=lambda e: e.time)
        telemetry.connections.sort(key=lambda e: e.time)
        telemetry.logons.sort(key=lambda e: e.time)
        telemetry.registry.sort(key=lambda e: e.time)
        telemetry.files.sort(key=lambda e: e.time)
        telemetry.accounts.sort(key=lambda e: e.time)
        telemetry.system.sort(key=lambda e: e.time)
        return telemetry


def writer_pid(telemetry: Telemetry, event: RegistryEvent) -> int | None:
    """The pid of a registry write's process: its own, else the pid that another record of the
    same host gives its GUID (a Sysmon 13 of some builds names the writer by GUID only; a vendor
    EDR always reports the initiating process, which its emulator then knows the same way)."""
    if event.pid is not None or not event.process_guid:
        return event.pid
    known = [(p.host, p.pid, p.guid) for p in telemetry.processes]
    known += [(r.host, r.pid, r.process_guid) for r in [*telemetry.connections, *telemetry.system]]
    for host, pid, guid in known:
        if pid is not None and guid == event.process_guid and same_host(host, event.host):
            return pid
    return None
