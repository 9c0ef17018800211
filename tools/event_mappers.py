"""Pure mappers from recorded raw events to the typed answers of the EDR readers: processes,
connections, logons, registry writes, files and the accounts an event names.

Events keep the field names of their source (Sysmon, Windows Security, Zeek), in any of the shapes
`tools.event_shapes` flattens. Anything not recognised is skipped: a mapper returns None, it never
raises, because one odd line in someone else's recording must not break a whole replay. System
events (tasks, services, directory changes, process access, WMI) are `tools.system_events`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tools.account_fields import to_account_event
from tools.event_shapes import event_host, event_id, event_source, event_time, flatten
from tools.event_values import (
    account_value,
    basename,
    guid_value,
    int_value,
    long_value,
    sha256_value,
    short_value,
    text_value,
)
from tools.results import (
    AccountEvent,
    FileEvent,
    LogonEvent,
    NetworkConnection,
    ProcessEvent,
    RegistryEvent,
)


def to_process_event(event: Mapping[str, Any]) -> ProcessEvent | None:
    """Sysmon 1 or Security 4688, else None."""
    flat = flatten(event)
    source, number = event_source(flat), event_id(flat)
    time, host = event_time(flat), event_host(flat)
    if time is None or host is None:
        return None
    if source == "sysmon" and number == 1:
        image = short_value(flat.get("Image"))
        return ProcessEvent(
            time=time,
            host=host,
            pid=int_value(flat.get("ProcessId")),
            name=basename(image),
            image=image,
            cmd_line=long_value(flat.get("CommandLine")),
            parent_pid=int_value(flat.get("ParentProcessId")),
            parent_image=short_value(flat.get("ParentImage")),
            parent_cmd_line=long_value(flat.get("ParentCommandLine")),
            parent_user=short_value(flat.get("ParentUser")),
            user=short_value(flat.get("User")),
            sha256=sha256_value(flat.get("Hashes")),
            guid=guid_value(flat.get("ProcessGuid")),
            parent_guid=guid_value(flat.get("ParentProcessGuid")),
        )
    if source == "security" and number == 4688:
        image = short_value(flat.get("NewProcessName"))
        return ProcessEvent(
            time=time,
            host=host,
            pid=int_value(flat.get("NewProcessId")),
            name=basename(image),
            image=image,
            cmd_line=long_value(flat.get("CommandLine")),
            parent_pid=int_value(flat.get("ProcessId")),
            parent_image=short_value(flat.get("ParentProcessName")),
            # The target subject is who the process runs as (Windows 10+); the creator otherwise.
            user=account_value(flat, "Target") or account_value(flat, "Subject"),
        )
    return None


def to_network_connection(event: Mapping[str, Any]) -> NetworkConnection | None:
    """Sysmon 3 and 22, Zeek conn and dns, else None."""
    flat = flatten(event)
    source, number, time = event_source(flat), event_id(flat), event_time(flat)
    if time is None:
        return None
    host = event_host(flat)
    if source == "sysmon" and number == 3:
        return NetworkConnection(
            time=time,
            host=host,
            pid=int_value(flat.get("ProcessId")),
            image=short_value(flat.get("Image")),
            src_ip=short_value(flat.get("SourceIp")),
            src_port=int_value(flat.get("SourcePort")),
            dst_ip=short_value(flat.get("DestinationIp")),
            dst_port=int_value(flat.get("DestinationPort")),
            domain=short_value(flat.get("DestinationHostname")),
            protocol=short_value(flat.get("Protocol")),
            process_guid=guid_value(flat.get("ProcessGuid")),
        )
    if source == "sysmon" and number == 22:
        return NetworkConnection(
            time=time,
            host=host,
            pid=int_value(flat.get("ProcessId")),
            image=short_value(flat.get("Image")),
            domain=short_value(flat.get("QueryName")),
            protocol="dns",
            process_guid=guid_value(flat.get("ProcessGuid")),
        )
    if source in ("zeek_conn", "zeek_dns"):
        return NetworkConnection(
            time=time,
            host=host if "event_source" in flat else None,
            src_ip=short_value(flat.get("id.orig_h")),
            src_port=int_value(flat.get("id.orig_p")),
            dst_ip=short_value(flat.get("id.resp_h")),
            dst_port=int_value(flat.get("id.resp_p")),
            domain=short_value(flat.get("query")) if source == "zeek_dns" else None,
            protocol="dns" if source == "zeek_dns" else short_value(flat.get("proto")),
        )
    return None


def to_logon_event(event: Mapping[str, Any]) -> LogonEvent | None:
    """Security 4624 (success), 4625 (failure) and 4648 (explicit credentials), else None; with
    who asked for it and, for a NewCredentials logon, the account it presents outbound."""
    flat = flatten(event)
    number, time, host = event_id(flat), event_time(flat), event_host(flat)
    if event_source(flat) != "security" or number not in (4624, 4625, 4648):
        return None
    if time is None or host is None:
        return None
    return LogonEvent(
        time=time,
        host=host,
        user=account_value(flat, "Target") or short_value(flat.get("Account")),
        logon_type=int_value(flat.get("LogonType")),
        src_ip=short_value(flat.get("IpAddress")),
        success=number != 4625,
        subject=account_value(flat, "Subject"),
        outbound_user=account_value(flat, "TargetOutbound"),
    )


# How Sysmon and the kernel spell hives, to the short form analysts and EDR consoles write.
_HIVES = (
    ("\\registry\\machine\\", "HKLM\\"),
    ("\\registry\\user\\", "HKU\\"),
    ("hkey_local_machine\\", "HKLM\\"),
    ("hkey_users\\", "HKU\\"),
    ("hkey_current_user\\", "HKCU\\"),
    ("hkey_classes_root\\", "HKCR\\"),
)


def registry_path(key: str) -> str:
    """`\\REGISTRY\\MACHINE\\SOFTWARE\\...` and `HKEY_LOCAL_MACHINE\\...` -> `HKLM\\SOFTWARE\\...`;
    the rest of the path keeps its recorded spelling."""
    text = key.strip()
    lowered = text.lower()
    for prefix, short in _HIVES:
        if lowered.startswith(prefix):
            return short + text[len(prefix) :]
    return text


def to_registry_event(event: Mapping[str, Any]) -> RegistryEvent | None:
    """Sysmon 12 (key created/deleted), 13 (value set) and 14 (renamed), Security 4657 (a
    registry value modified, under object-access auditing), else None."""
    flat = flatten(event)
    if event_source(flat) == "security" and event_id(flat) == 4657:
        return _audited_registry_value(flat)
    if event_source(flat) != "sysmon" or event_id(flat) not in (12, 13, 14):
        return None
    time, host, key = event_time(flat), event_host(flat), short_value(flat.get("TargetObject"))
    if time is None or host is None or key is None:
        return None
    return RegistryEvent(
        time=time,
        host=host,
        pid=int_value(flat.get("ProcessId")),
        image=short_value(flat.get("Image")),
        operation=short_value(flat.get("EventType")),
        key=registry_path(key),
        details=long_value(flat.get("Details")),
        user=short_value(flat.get("User")),
        process_guid=guid_value(flat.get("ProcessGuid")),
    )


def _audited_registry_value(flat: Mapping[str, Any]) -> RegistryEvent | None:
    """Security 4657: `ObjectName` (the key, `\\REGISTRY\\MACHINE\\...`) and `ObjectValueName`,
    written by `ProcessId` (hex) `ProcessName` as the subject account."""
    time, host, key = event_time(flat), event_host(flat), short_value(flat.get("ObjectName"))
    if time is None or host is None or key is None:
        return None
    value = text_value(flat.get("ObjectValueName"))
    return RegistryEvent(
        time=time,
        host=host,
        pid=int_value(flat.get("ProcessId")),
        image=short_value(flat.get("ProcessName")),
        operation="SetValue",
        key=registry_path(key) + (f"\\{value}" if value and value != "-" else ""),
        details=long_value(flat.get("NewValue")),
        user=account_value(flat, "Subject"),
    )


def to_file_event(event: Mapping[str, Any]) -> FileEvent | None:
    """Sysmon 11 (file created), else None."""
    flat = flatten(event)
    if event_source(flat) != "sysmon" or event_id(flat) != 11:
        return None
    time, host, path = event_time(flat), event_host(flat), short_value(flat.get("TargetFilename"))
    if time is None or host is None or path is None:
        return None
    return FileEvent(
        time=time,
        host=host,
        pid=int_value(flat.get("ProcessId")),
        image=short_value(flat.get("Image")),
        path=path,
        user=short_value(flat.get("User")),
        process_guid=guid_value(flat.get("ProcessGuid")),
    )


def account_event(event: Mapping[str, Any]) -> AccountEvent | None:
    """An event naming accounts by role that no other mapper types (a Kerberos ticket, an NTLM
    validation, an account change, a Linux login), else None."""
    flat = flatten(event)
    return to_account_event(
        flat, event_source(flat), event_id(flat), event_time(flat), event_host(flat)
    )
