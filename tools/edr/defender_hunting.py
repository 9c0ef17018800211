"""Defender advanced-hunting rows (the Device* tables' columns) mapped to the EDR readers' typed
answers. A row that does not fit returns None, never raises."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from tools.edr.wire import wire_int, wire_text
from tools.event_mappers import registry_path
from tools.results import FileEvent, LogonEvent, NetworkConnection, ProcessEvent, RegistryEvent

PROCESSES = "DeviceProcessEvents"
NETWORK = "DeviceNetworkEvents"
LOGONS = "DeviceLogonEvents"
REGISTRY = "DeviceRegistryEvents"
FILES = "DeviceFileEvents"

# DeviceLogonEvents.LogonType names, to the Windows logon type numbers.
LOGON_TYPES = {
    "Interactive": 2,
    "Network": 3,
    "Batch": 4,
    "Service": 5,
    "Unlock": 7,
    "NetworkCleartext": 8,
    "NewCredentials": 9,
    "RemoteInteractive": 10,
    "CachedInteractive": 11,
}
# DeviceRegistryEvents.ActionType, to the operation names the readers use (Sysmon's).
REGISTRY_ACTIONS = {
    "RegistryValueSet": "SetValue",
    "RegistryKeyCreated": "CreateKey",
    "RegistryKeyDeleted": "DeleteKey",
    "RegistryValueDeleted": "DeleteValue",
    "RegistryKeyRenamed": "RenameKey",
}
_INBOUND = {"InboundConnectionAccepted", "ListeningConnectionCreated"}


def to_process_event(row: Mapping[str, Any]) -> ProcessEvent | None:
    time, host = row_time(row), wire_text(row.get("DeviceName"))
    if time is None or host is None:
        return None
    return ProcessEvent(
        time=time,
        host=host,
        pid=wire_int(row.get("ProcessId")),
        name=wire_text(row.get("FileName")),
        image=wire_text(row.get("FolderPath")),
        cmd_line=wire_text(row.get("ProcessCommandLine"), 16_384),
        parent_pid=wire_int(row.get("InitiatingProcessId")),
        parent_image=wire_text(row.get("InitiatingProcessFolderPath")),
        parent_cmd_line=wire_text(row.get("InitiatingProcessCommandLine"), 16_384),
        parent_user=account(row, "InitiatingProcessAccount"),
        user=account(row, "Account"),
        sha256=(wire_text(row.get("SHA256")) or "").lower() or None,
    )


def to_network_connection(row: Mapping[str, Any]) -> NetworkConnection | None:
    time = row_time(row)
    if time is None:
        return None
    local, remote = wire_text(row.get("LocalIP")), wire_text(row.get("RemoteIP"))
    local_port, remote_port = wire_int(row.get("LocalPort")), wire_int(row.get("RemotePort"))
    inbound = row.get("ActionType") in _INBOUND
    protocol = (wire_text(row.get("Protocol")) or "").lower() or None
    return NetworkConnection(
        time=time,
        host=wire_text(row.get("DeviceName")),
        pid=wire_int(row.get("InitiatingProcessId")),
        image=wire_text(row.get("InitiatingProcessFolderPath")),
        src_ip=remote if inbound else local,
        src_port=remote_port if inbound else local_port,
        dst_ip=local if inbound else remote,
        dst_port=local_port if inbound else remote_port,
        domain=wire_text(row.get("RemoteUrl")),
        protocol=protocol,
    )


def to_logon_event(row: Mapping[str, Any]) -> LogonEvent | None:
    time, host = row_time(row), wire_text(row.get("DeviceName"))
    if time is None or host is None:
        return None
    return LogonEvent(
        time=time,
        host=host,
        user=account(row, "Account"),
        logon_type=LOGON_TYPES.get(str(row.get("LogonType"))),
        src_ip=wire_text(row.get("RemoteIP")),
        success=row.get("ActionType") != "LogonFailed",
        subject=account(row, "InitiatingProcessAccount"),
        outbound_user=_outbound(row.get("AdditionalFields")),
    )


def _outbound(extra: Any) -> str | None:
    """A NewCredentials logon's outbound account from `AdditionalFields` (an object, or the
    JSON text of one): `TargetOutboundDomainName\\TargetOutboundUserName`."""
    if isinstance(extra, str):
        try:
            extra = json.loads(extra)
        except ValueError:
            return None
    if not isinstance(extra, Mapping):
        return None
    return account(extra, "TargetOutboundUser", "TargetOutboundDomainName")


def to_registry_event(row: Mapping[str, Any]) -> RegistryEvent | None:
    time, host, key = (
        row_time(row),
        wire_text(row.get("DeviceName")),
        wire_text(row.get("RegistryKey")),
    )
    if time is None or host is None or key is None:
        return None
    value = wire_text(row.get("RegistryValueName"))
    return RegistryEvent(
        time=time,
        host=host,
        pid=wire_int(row.get("InitiatingProcessId")),
        image=wire_text(row.get("InitiatingProcessFolderPath")),
        operation=REGISTRY_ACTIONS.get(str(row.get("ActionType"))),
        key=registry_path(key) + (f"\\{value}" if value else ""),
        details=wire_text(row.get("RegistryValueData"), 16_384),
        user=account(row, "InitiatingProcessAccount"),
    )


def to_file_event(row: Mapping[str, Any]) -> FileEvent | None:
    time, host, path = (
        row_time(row),
        wire_text(row.get("DeviceName")),
        wire_text(row.get("FolderPath")),
    )
    if time is None or host is None or path is None or row.get("ActionType") != "FileCreated":
        return None
    return FileEvent(
        time=time,
        host=host,
        pid=wire_int(row.get("InitiatingProcessId")),
        image=wire_text(row.get("InitiatingProcessFolderPath")),
        path=path,
        user=account(row, "InitiatingProcessAccount"),
    )


def hunting_query(
    table: str,
    machine_id: str,
    start: datetime | None,
    end: datetime | None,
    limit: int,
    actions: tuple[str, ...] = (),
) -> str:
    """KQL over one Device* table for one machine (of those ActionTypes, if given), oldest
    first."""
    lines = [table, f'| where DeviceId == "{machine_id}"']
    if actions:
        lines.append("| where ActionType in (" + ", ".join(f'"{a}"' for a in actions) + ")")
    if start is not None:
        lines.append(f"| where Timestamp >= datetime({_iso(start)})")
    if end is not None:
        lines.append(f"| where Timestamp <= datetime({_iso(end)})")
    lines += ["| order by Timestamp asc", f"| take {int(limit)}"]
    return "\n".join(lines)


def _iso(moment: datetime) -> str:
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return aware.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def row_time(row: Mapping[str, Any]) -> datetime | None:
    text = wire_text(row.get("Timestamp"))
    if text is None:
        return None
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def account(row: Mapping[str, Any], prefix: str, domain_field: str | None = None) -> str | None:
    name = wire_text(row.get(f"{prefix}Name"))
    domain = wire_text(row.get(domain_field or f"{prefix}Domain"))
    return f"{domain}\\{name}" if name and domain else name
