"""Falcon sensor events (as Next-Gen SIEM returns them) mapped to the EDR readers' typed answers.

Field names follow the Falcon events data dictionary: `ProcessRollup2` (`RawProcessId`,
`ImageFileName`, `CommandLine`, `ParentProcessId`, `SHA256HashData`), `NetworkConnectIP4`/
`NetworkReceiveAcceptIP4` (`LocalAddressIP4`, `RemoteAddressIP4`, `Protocol` as an IANA number),
`DnsRequest`, `UserLogon`/`UserLogonFailed2`, the registry and file-written events. A row that
does not fit returns None, never raises: one odd event must not break a read.

`ParentProcessId` and `ContextProcessId` are Falcon's own process ids (a `TargetProcessId`), not
the OS pid; they are reported as they come.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from tools.edr.wire import wire_int, wire_text
from tools.errors import PermanentToolError
from tools.event_mappers import registry_path
from tools.results import FileEvent, LogonEvent, NetworkConnection, ProcessEvent, RegistryEvent

PROCESS_EVENTS = ("ProcessRollup2", "SyntheticProcessRollup2")
NETWORK_EVENTS = (
    "NetworkConnectIP4",
    "NetworkConnectIP6",
    "NetworkReceiveAcceptIP4",
    "NetworkReceiveAcceptIP6",
    "DnsRequest",
)
LOGON_EVENTS = ("UserLogon", "UserLogonFailed2")
REGISTRY_EVENTS = ("RegGenericValueUpdate", "AsepValueUpdate", "AsepKeyUpdate")
FILE_EVENTS = (
    "NewExecutableWritten",
    "PeFileWritten",
    "LnkFileWritten",
    "NewScriptWritten",
    "GenericFileWritten",
)
_INBOUND = ("NetworkReceiveAcceptIP4", "NetworkReceiveAcceptIP6")
_PROTOCOLS = {1: "icmp", 6: "tcp", 17: "udp", 58: "icmpv6"}
_UNSAFE_ARG = re.compile(r'["\r\n\x00]')
_REG_HIVES = ("HKLM\\", "HKCU\\", "HKU\\", "HKCR\\", "HKEY_")
_PS_ROW = re.compile(r"^\s*(?P<name>\S.*?)\s+(?P<pid>\d+)(\s|$)")
# Falcon's RegOperationType values.
REG_OPERATIONS = {1: "SetValue", 2: "DeleteValue", 3: "CreateKey", 4: "DeleteKey", 7: "RenameKey"}


def to_process_event(row: Mapping[str, Any]) -> ProcessEvent | None:
    time, host = row_time(row), wire_text(row.get("ComputerName"))
    if row.get("#event_simpleName") not in PROCESS_EVENTS or time is None or host is None:
        return None
    image = wire_text(row.get("ImageFileName"))
    return ProcessEvent(
        time=time,
        host=host,
        pid=wire_int(row.get("RawProcessId")),
        name=image.replace("/", "\\").rsplit("\\", 1)[-1] if image else None,
        image=image,
        cmd_line=wire_text(row.get("CommandLine"), 16_384),
        parent_pid=wire_int(row.get("ParentProcessId")),
        parent_image=wire_text(row.get("ParentBaseFileName")),
        user=row_user(row),
        sha256=(wire_text(row.get("SHA256HashData")) or "").lower() or None,
    )


def to_network_connection(row: Mapping[str, Any]) -> NetworkConnection | None:
    name, time = row.get("#event_simpleName"), row_time(row)
    if name not in NETWORK_EVENTS or time is None:
        return None
    host, pid = wire_text(row.get("ComputerName")), wire_int(row.get("ContextProcessId"))
    image = wire_text(row.get("ContextImageFileName"))
    if name == "DnsRequest":
        domain = wire_text(row.get("DomainName"))
        return NetworkConnection(
            time=time, host=host, pid=pid, image=image, domain=domain, protocol="dns"
        )
    v6 = name.endswith("IP6")
    local = wire_text(row.get("LocalAddressIP6" if v6 else "LocalAddressIP4"))
    remote = wire_text(row.get("RemoteAddressIP6" if v6 else "RemoteAddressIP4"))
    local_port, remote_port = wire_int(row.get("LocalPort")), wire_int(row.get("RemotePort"))
    inbound = name in _INBOUND
    protocol = wire_int(row.get("Protocol"))
    return NetworkConnection(
        time=time,
        host=host,
        pid=pid,
        image=image,
        src_ip=remote if inbound else local,
        src_port=remote_port if inbound else local_port,
        dst_ip=local if inbound else remote,
        dst_port=local_port if inbound else remote_port,
        protocol=_PROTOCOLS.get(protocol, str(protocol)) if protocol is not None else None,
    )


def to_logon_event(row: Mapping[str, Any]) -> LogonEvent | None:
    name, time = row.get("#event_simpleName"), row_time(row)
    host = wire_text(row.get("ComputerName"))
    if name not in LOGON_EVENTS or time is None or host is None:
        return None
    return LogonEvent(
        time=time,
        host=host,
        user=row_user(row),
        logon_type=wire_int(row.get("LogonType")),
        src_ip=wire_text(row.get("RemoteAddressIP4")) or wire_text(row.get("RemoteAddressIP6")),
        success=name == "UserLogon",
        subject=_party(row, "SubjectUserName", "SubjectDomainName"),
        outbound_user=_party(row, "TargetOutboundUserName", "TargetOutboundDomainName"),
    )


def _party(row: Mapping[str, Any], name_field: str, domain_field: str) -> str | None:
    name, domain = wire_text(row.get(name_field)), wire_text(row.get(domain_field))
    return f"{domain}\\{name}" if name and domain else name


def to_registry_event(row: Mapping[str, Any]) -> RegistryEvent | None:
    time, host, key = (
        row_time(row),
        wire_text(row.get("ComputerName")),
        wire_text(row.get("RegObjectName")),
    )
    if row.get("#event_simpleName") not in REGISTRY_EVENTS or not (time and host and key):
        return None
    value = wire_text(row.get("RegValueName"))
    path = registry_path(key) + (f"\\{value}" if value else "")
    operation = wire_int(row.get("RegOperationType"))
    return RegistryEvent(
        time=time,
        host=host,
        pid=wire_int(row.get("ContextProcessId")),
        image=wire_text(row.get("ContextImageFileName")),
        operation=REG_OPERATIONS.get(operation) if operation is not None else None,
        key=path,
        details=wire_text(row.get("RegStringValue"), 16_384),
        user=row_user(row),
    )


def to_file_event(row: Mapping[str, Any]) -> FileEvent | None:
    time, host, path = (
        row_time(row),
        wire_text(row.get("ComputerName")),
        wire_text(row.get("TargetFileName")),
    )
    if row.get("#event_simpleName") not in FILE_EVENTS or not (time and host and path):
        return None
    return FileEvent(
        time=time,
        host=host,
        pid=wire_int(row.get("ContextProcessId")),
        image=wire_text(row.get("ContextImageFileName")),
        path=path,
        user=row_user(row),
    )


def row_time(row: Mapping[str, Any]) -> datetime | None:
    """`@timestamp` is epoch milliseconds in LogScale results."""
    value = wire_int(row.get("@timestamp"))
    return datetime.fromtimestamp(value / 1000, UTC) if value is not None else None


def row_user(row: Mapping[str, Any]) -> str | None:
    user = wire_text(row.get("UserName"))
    domain = wire_text(row.get("LogonDomain"))
    if user and domain and "\\" not in user:
        return f"{domain}\\{user}"
    return user


# --- requests ------------------------------------------------------------------------------


def query_job(
    device_id: str,
    names: tuple[str, ...],
    start: datetime | None,
    end: datetime | None,
    limit: int,
    lookback: str,
) -> dict[str, Any]:
    values = ",".join(f'"{n}"' for n in names)
    query = (
        f'aid={device_id} | in(field="#event_simpleName", values=[{values}]) '
        f"| sort(@timestamp, order=asc, limit={int(limit)})"
    )
    body: dict[str, Any] = {"queryString": query, "isLive": False}
    body["start"] = epoch_ms(start) if start is not None else lookback
    if end is not None:
        body["end"] = epoch_ms(end)
    return body


def epoch_ms(moment: datetime) -> int:
    if moment.tzinfo is None:  # naive times are UTC, as in the in-memory twin
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def parse_ps(stdout: str) -> set[int]:
    """The pids of RTR `ps` output: one row per process, its name then its id."""
    pids = set()
    for line in stdout.splitlines():
        match = _PS_ROW.match(line)
        if match:
            pids.add(int(match["pid"]))
    return pids


def split_registry(artefact: str) -> tuple[str, str] | None:
    """`HKLM\\...\\Run\\Updater` -> (`HKLM\\...\\Run`, `Updater`); None for other artefacts."""
    text = artefact.strip()
    if not text.upper().startswith(_REG_HIVES) or "\\" not in text:
        return None
    key, _, value = text.rpartition("\\")
    return key, value


def checked_artefact(artefact: str) -> str:
    if _UNSAFE_ARG.search(artefact) or not artefact.strip():
        raise PermanentToolError(f"crowdstrike: refusing artefact {artefact[:100]!r}")
    return artefact.strip()


SERVICES_KEY = "HKLM\\SYSTEM\\CurrentControlSet\\Services"


def service_key(artefact: str) -> str | None:
    """A service's registration key, for an artefact that is a bare service name (service names
    hold no backslash or slash; a task's name starts with one, a file or value is a path)."""
    name = artefact.strip()
    if not name or any(c in name for c in "\\/:"):
        return None
    return f"{SERVICES_KEY}\\{name}"


def presence_command(artefact: str) -> tuple[str, str]:
    registry = split_registry(checked_artefact(artefact))
    if registry:
        return "reg query", f'reg query "{registry[0]}" "{registry[1]}"'
    if re.match(r"[A-Za-z]:\\", artefact.strip()):
        return "ls", f'ls "{artefact.strip()}"'
    service = service_key(artefact)
    if service:
        return "reg query", f'reg query "{service}"'
    raise PermanentToolError(
        "crowdstrike: only registry values, files and services can be removed over RTR"
    )


def removal_command(artefact: str) -> tuple[str, str]:
    registry = split_registry(checked_artefact(artefact))
    if registry:
        return "reg delete", f'reg delete "{registry[0]}" "{registry[1]}"'
    service = service_key(artefact)
    if service:
        # The service's key is its registration: without it the SCM no longer starts it.
        return "reg delete", f'reg delete "{service}"'
    return "rm", f'rm "{artefact.strip()}"'
