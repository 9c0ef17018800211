"""Pure mappers from recorded raw events to the typed answers of the EDR readers.

Events keep the field names of their source (Sysmon, Windows Security, Zeek) and arrive in three
shapes: flat (the recorded-incident format, and most OTRF files), winlogbeat (fields nested under
`event_data`) and Sentinel rows (fields in an `EventData` JSON string, some with `_string` or
`_dynamic` suffixes). Anything not recognised is skipped: a mapper returns None, it never raises,
because one odd line in someone else's recording must not break a whole replay.

Also here: how names recorded by different sources are compared (hosts by first label,
identities with or without their domain).
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from tools.account_fields import to_account_event
from tools.accounts import Account
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

_SHORT = 1_024
_LONG = 16_384
_EMPTY = {"", "-", "(empty)", "null", "none"}
_SUFFIXES = ("_string", "_dynamic", "_int", "_bool")


# --- names ------------------------------------------------------------------------------------


def host_key(name: str) -> str:
    """`PRD01.pandalab.com`, `prd01` and `PRD01` all compare as `prd01`."""
    return name.strip().split(".", 1)[0].lower()


def same_host(a: str | None, b: str | None) -> bool:
    return a is not None and b is not None and host_key(a) == host_key(b)


def identity_key(name: str) -> tuple[str | None, str]:
    """`CONTOSO\\alice`, `contoso.local\\Alice`, `alice@contoso.local` and the glued
    `contoso.local\\alice@contoso.local` -> ("contoso", "alice"); a bare `alice` has no domain
    (`tools.accounts` parses every spelling)."""
    account = Account.parse(name)
    if account is None:
        return None, name.strip().lower()
    return account.netbios, account.name


def same_identity(a: str, b: str) -> bool:
    """Equal users, and equal domains when both names carry one."""
    domain_a, user_a = identity_key(a)
    domain_b, user_b = identity_key(b)
    if user_a != user_b:
        return False
    return domain_a is None or domain_b is None or domain_a == domain_b


# --- shapes -----------------------------------------------------------------------------------


class _Flat(dict[str, Any]):
    """An event `from_events` flattened once for every mapper: flattening it is itself."""


def flatten(event: Mapping[str, Any]) -> dict[str, Any]:
    """One flat dict whatever the shape; nested event fields win over envelope fields."""
    if isinstance(event, _Flat):
        return event
    flat = {_strip_suffix(k): v for k, v in event.items()}
    nested = event.get("event_data")
    if isinstance(nested, Mapping):
        flat.update({_strip_suffix(k): v for k, v in nested.items()})
    payload = event.get("EventData")
    if isinstance(payload, str) and payload.lstrip().startswith("{"):
        try:
            payload = json.loads(payload)
        except ValueError:
            payload = None
    if isinstance(payload, Mapping):
        flat.update({_strip_suffix(k): v for k, v in payload.items()})
    return flat


@lru_cache(maxsize=4_096)  # field names repeat on every event; bounded all the same
def _strip_suffix(key: str) -> str:
    for suffix in _SUFFIXES:
        if key.endswith(suffix) and len(key) > len(suffix):
            return key[: -len(suffix)]
    return key


def event_source(flat: Mapping[str, Any]) -> str | None:
    """The normalised source (`sysmon`, `security`, `zeek_conn`, `zeek_dns`...)."""
    declared = _text(flat.get("event_source"))
    if declared:
        return declared.lower()
    for key in ("Channel", "log_name", "EventLog", "SourceName", "source_name", "Source"):
        channel = (_text(flat.get(key)) or "").lower()
        if "sysmon" in channel:
            return "sysmon"
        if channel in ("security", "microsoft-windows-security-auditing"):
            return "security"
    if "id.orig_h" in flat:
        return "zeek_dns" if "query" in flat else "zeek_conn"
    return None


def event_id(flat: Mapping[str, Any]) -> int | None:
    return _int(flat.get("EventID", flat.get("event_id")))


def event_time(flat: Mapping[str, Any]) -> datetime | None:
    for key in ("@timestamp", "TimeCreated", "TimeGenerated", "Timestamp", "UtcTime"):
        parsed = _datetime(flat.get(key))
        if parsed is not None:
            return parsed
    epoch = flat.get("ts")
    if isinstance(epoch, int | float) and not isinstance(epoch, bool):
        return datetime.fromtimestamp(epoch, UTC)
    return None


def event_host(flat: Mapping[str, Any]) -> str | None:
    """The host the event happened on. In the recorded-incident format `host` is the asset id;
    in raw OTRF files it is the collector, so the source's own computer name wins there."""
    if "event_source" in flat:
        return _short(flat.get("host"))
    for key in ("Hostname", "computer_name", "Computer", "DeviceName"):
        name = _short(flat.get(key))
        if name:
            return name
    return _short(flat.get("host"))


# --- mappers ----------------------------------------------------------------------------------


def to_process_event(event: Mapping[str, Any]) -> ProcessEvent | None:
    """Sysmon 1 or Security 4688, else None."""
    flat = flatten(event)
    source, number = event_source(flat), event_id(flat)
    time, host = event_time(flat), event_host(flat)
    if time is None or host is None:
        return None
    if source == "sysmon" and number == 1:
        image = _short(flat.get("Image"))
        return ProcessEvent(
            time=time,
            host=host,
            pid=_int(flat.get("ProcessId")),
            name=_basename(image),
            image=image,
            cmd_line=_long(flat.get("CommandLine")),
            parent_pid=_int(flat.get("ParentProcessId")),
            parent_image=_short(flat.get("ParentImage")),
            parent_cmd_line=_long(flat.get("ParentCommandLine")),
            parent_user=_short(flat.get("ParentUser")),
            user=_short(flat.get("User")),
            sha256=_sha256(flat.get("Hashes")),
            guid=_guid(flat.get("ProcessGuid")),
            parent_guid=_guid(flat.get("ParentProcessGuid")),
        )
    if source == "security" and number == 4688:
        image = _short(flat.get("NewProcessName"))
        return ProcessEvent(
            time=time,
            host=host,
            pid=_int(flat.get("NewProcessId")),
            name=_basename(image),
            image=image,
            cmd_line=_long(flat.get("CommandLine")),
            parent_pid=_int(flat.get("ProcessId")),
            parent_image=_short(flat.get("ParentProcessName")),
            # The target subject is who the process runs as (Windows 10+); the creator otherwise.
            user=_account(flat, "Target") or _account(flat, "Subject"),
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
            pid=_int(flat.get("ProcessId")),
            image=_short(flat.get("Image")),
            src_ip=_short(flat.get("SourceIp")),
            src_port=_int(flat.get("SourcePort")),
            dst_ip=_short(flat.get("DestinationIp")),
            dst_port=_int(flat.get("DestinationPort")),
            domain=_short(flat.get("DestinationHostname")),
            protocol=_short(flat.get("Protocol")),
            process_guid=_guid(flat.get("ProcessGuid")),
        )
    if source == "sysmon" and number == 22:
        return NetworkConnection(
            time=time,
            host=host,
            pid=_int(flat.get("ProcessId")),
            image=_short(flat.get("Image")),
            domain=_short(flat.get("QueryName")),
            protocol="dns",
            process_guid=_guid(flat.get("ProcessGuid")),
        )
    if source in ("zeek_conn", "zeek_dns"):
        return NetworkConnection(
            time=time,
            host=host if "event_source" in flat else None,
            src_ip=_short(flat.get("id.orig_h")),
            src_port=_int(flat.get("id.orig_p")),
            dst_ip=_short(flat.get("id.resp_h")),
            dst_port=_int(flat.get("id.resp_p")),
            domain=_short(flat.get("query")) if source == "zeek_dns" else None,
            protocol="dns" if source == "zeek_dns" else _short(flat.get("proto")),
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
        user=_account(flat, "Target") or _short(flat.get("Account")),
        logon_type=_int(flat.get("LogonType")),
        src_ip=_short(flat.get("IpAddress")),
        success=number != 4625,
        subject=_account(flat, "Subject"),
        outbound_user=_account(flat, "TargetOutbound"),
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
    time, host, key = event_time(flat), event_host(flat), _short(flat.get("TargetObject"))
    if time is None or host is None or key is None:
        return None
    return RegistryEvent(
        time=time,
        host=host,
        pid=_int(flat.get("ProcessId")),
        image=_short(flat.get("Image")),
        operation=_short(flat.get("EventType")),
        key=registry_path(key),
        details=_long(flat.get("Details")),
        user=_short(flat.get("User")),
        process_guid=_guid(flat.get("ProcessGuid")),
    )


def _audited_registry_value(flat: Mapping[str, Any]) -> RegistryEvent | None:
    """Security 4657: `ObjectName` (the key, `\\REGISTRY\\MACHINE\\...`) and `ObjectValueName`,
    written by `ProcessId` (hex) `ProcessName` as the subject account."""
    time, host, key = event_time(flat), event_host(flat), _short(flat.get("ObjectName"))
    if time is None or host is None or key is None:
        return None
    value = _text(flat.get("ObjectValueName"))
    return RegistryEvent(
        time=time,
        host=host,
        pid=_int(flat.get("ProcessId")),
        image=_short(flat.get("ProcessName")),
        operation="SetValue",
        key=registry_path(key) + (f"\\{value}" if value and value != "-" else ""),
        details=_long(flat.get("NewValue")),
        user=_account(flat, "Subject"),
    )


def to_file_event(event: Mapping[str, Any]) -> FileEvent | None:
    """Sysmon 11 (file created), else None."""
    flat = flatten(event)
    if event_source(flat) != "sysmon" or event_id(flat) != 11:
        return None
    time, host, path = event_time(flat), event_host(flat), _short(flat.get("TargetFilename"))
    if time is None or host is None or path is None:
        return None
    return FileEvent(
        time=time,
        host=host,
        pid=_int(flat.get("ProcessId")),
        image=_short(flat.get("Image")),
        path=path,
        user=_short(flat.get("User")),
        process_guid=_guid(flat.get("ProcessGuid")),
    )


def account_event(event: Mapping[str, Any]) -> AccountEvent | None:
    """An event naming accounts by role that no other mapper types (a Kerberos ticket, an NTLM
    validation, an account change, a Linux login), else None."""
    flat = flatten(event)
    return to_account_event(
        flat, event_source(flat), event_id(flat), event_time(flat), event_host(flat)
    )


_TASK_COMMAND = re.compile(r"<Command>(.*?)</Command>", re.I | re.S)
_TASK_ARGUMENTS = re.compile(r"<Arguments>(.*?)</Arguments>", re.I | re.S)
_WMI_CONSUMER_TYPES = {
    "command line": "CommandLineEventConsumer",
    "script": "ActiveScriptEventConsumer",
}


def to_system_event(event: Mapping[str, Any]) -> SystemEvent | None:
    """Security 4698/4702 (task registered/updated), 4697 and System 7045 (service installed),
    5136 (a directory object's attribute changed: `name` the object's DN, `detail` "<attribute>
    added|deleted", `command` the value), Sysmon 8 (remote thread), 10 (process access), 19/20/21
    (WMI filter, consumer, binding); else None."""
    flat = flatten(event)
    source, number = event_source(flat), event_id(flat)
    time, host = event_time(flat), event_host(flat)
    if time is None or host is None or number is None:
        return None
    fields: dict[str, Any] = {}
    if source == "security" and number in (4698, 4702):
        fields = {
            "pid": _int(flat.get("ClientProcessId")),  # the registering process (Windows 10+)
            "user": _account(flat, "Subject"),
            "name": _short(flat.get("TaskName")),
            "command": task_action(_text(flat.get("TaskContent")) or ""),
        }
    elif number == 4697 and source == "security":
        fields = {
            "user": _account(flat, "Subject"),
            "name": _short(flat.get("ServiceName")),
            "command": _long(flat.get("ServiceFileName")),
            "detail": service_start_type(flat.get("ServiceStartType")),
        }
    elif number == 7045 and (source == "system" or _scm(flat)):
        fields = {
            "name": _short(flat.get("ServiceName")),
            "command": _long(flat.get("ImagePath")),
            "detail": service_start_type(flat.get("StartType")),
        }
    elif source == "security" and number == 5136:
        operation = _DS_OPERATIONS.get((_text(flat.get("OperationType")) or "").strip())
        attribute = _short(flat.get("AttributeLDAPDisplayName"))
        if operation is None or attribute is None:
            return None
        fields = {
            "user": _account(flat, "Subject"),
            "name": _short(flat.get("ObjectDN")),
            "command": _long(flat.get("AttributeValue")),
            "detail": f"{attribute} {operation}",
        }
    elif source == "sysmon" and number in (8, 10):
        fields = {
            "pid": _int(flat.get("SourceProcessId")),
            "image": _short(flat.get("SourceImage")),
            "user": _short(flat.get("SourceUser")),
            "target_pid": _int(flat.get("TargetProcessId")),
            "target_image": _short(flat.get("TargetImage")),
            "access": _short(flat.get("GrantedAccess")) if number == 10 else None,
            "detail": _short(flat.get("CallTrace")),
            "process_guid": _guid(flat.get("SourceProcessGUID") or flat.get("SourceProcessGuid")),
        }
    elif source == "sysmon" and number in (19, 20, 21):
        if (_text(flat.get("Operation")) or "created").lower() != "created":
            return None
        fields = {"user": _short(flat.get("User"))}
        if number == 19:
            fields |= {"name": _short(flat.get("Name")), "command": _long(flat.get("Query"))}
        elif number == 20:
            kind = (_text(flat.get("Type")) or "").lower()
            name = _short(flat.get("Name"))
            consumer = _WMI_CONSUMER_TYPES.get(kind, "EventConsumer")
            fields |= {
                "name": f'{consumer}.Name="{name.strip(chr(34))}"' if name else None,
                "command": _long(flat.get("Destination")),
                "detail": _short(flat.get("Type")),
            }
        else:
            fields |= {
                "name": _short(flat.get("Consumer")),
                "detail": _short(flat.get("Filter")),
            }
    else:
        return None
    return SystemEvent(time=time, host=host, event_id=number, **fields)


# Security 5136's OperationType: a directory attribute's value added or deleted (a change is the
# old value deleted, then the new one added, under one correlation id)
_DS_OPERATIONS = {"%%14674": "added", "%%14675": "deleted", "Value Added": "added",
                  "Value Deleted": "deleted"}  # fmt: skip

_START_TYPES = {
    0: "boot start",
    1: "system start",
    2: "auto start",
    3: "demand start",
    4: "disabled",
}


def service_start_type(value: Any) -> str | None:
    """A service's start type as the SCM writes it (`auto start`), from its name or number."""
    number = _int(value)
    return _START_TYPES.get(number) if number is not None else (_short(value) or "").lower() or None


def _scm(flat: Mapping[str, Any]) -> bool:
    """A raw System-channel record of the Service Control Manager (no normalised source)."""
    channel = (_text(flat.get("Channel")) or _text(flat.get("log_name")) or "").lower()
    provider = (_text(flat.get("SourceName")) or _text(flat.get("source_name")) or "").lower()
    return channel == "system" or provider == "service control manager"


def task_action(content: str) -> str | None:
    """What a task runs, from its XML definition (`TaskContent`): command and arguments."""
    text = html.unescape(content)
    command = _TASK_COMMAND.search(text)
    if command is None:
        return None
    arguments = _TASK_ARGUMENTS.search(text)
    action = command.group(1).strip() + (" " + arguments.group(1).strip() if arguments else "")
    return _long(html.unescape(action))


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
                event = _Flat(flatten(raw))
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


# --- values -----------------------------------------------------------------------------------


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, bool | Mapping | list):
        return None
    text = str(value).strip()
    return None if text.lower() in _EMPTY else text


def _short(value: Any) -> str | None:
    text = _text(value)
    return text[:_SHORT] if text else None


def _long(value: Any) -> str | None:
    text = _text(value)
    return text[:_LONG] if text else None


def _int(value: Any) -> int | None:
    """Decimal or hex (`0x1a2`, as Windows Security writes process ids)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    text = _text(value)
    if text is None:
        return None
    try:
        return int(text, 16) if text.lower().startswith("0x") else int(text)
    except ValueError:
        return None


def _datetime(value: Any) -> datetime | None:
    text = _text(value)
    if text is None:
        return None
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _basename(path: str | None) -> str | None:
    if not path:
        return None
    return path.replace("/", "\\").rsplit("\\", 1)[-1] or None


def _guid(value: Any) -> str | None:
    """`{5770385f-c22a-43e0-bf4c-06f5698ffbd9}` -> lowercased, without braces; the all-zero guid
    Sysmon writes for an unknown process is none."""
    text = _text(value)
    if text is None:
        return None
    guid = text.strip("{}").lower()
    return None if not guid.strip("0-") else guid[:_SHORT]


def _sha256(hashes: Any) -> str | None:
    """`SHA1=...,MD5=...,SHA256=...,IMPHASH=...` -> the SHA256, lowercased."""
    text = _text(hashes)
    if text is None:
        return None
    for part in text.split(","):
        name, _, digest = part.partition("=")
        if name.strip().upper() == "SHA256" and len(digest.strip()) == 64:
            return digest.strip().lower()
    return None


def _account(flat: Mapping[str, Any], prefix: str) -> str | None:
    user = _short(flat.get(f"{prefix}UserName"))
    if user is None:
        return None
    domain = _short(flat.get(f"{prefix}DomainName"))
    return f"{domain}\\{user}" if domain else user


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
