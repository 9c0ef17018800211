"""The mapper of system events, from a raw event to a `SystemEvent`: scheduled tasks, services,
directory object changes, remote threads and process access, WMI subscriptions; with how a task's
XML names what it runs and how a service's start type is spelt. Like every mapper, it returns
None for what it does not recognise and never raises.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from typing import Any

from tools.event_shapes import event_host, event_id, event_source, event_time, flatten
from tools.event_values import (
    account_value,
    guid_value,
    int_value,
    long_value,
    short_value,
    text_value,
)
from tools.results import SystemEvent

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
            "pid": int_value(flat.get("ClientProcessId")),  # the registering process (Windows 10+)
            "user": account_value(flat, "Subject"),
            "name": short_value(flat.get("TaskName")),
            "command": task_action(text_value(flat.get("TaskContent")) or ""),
        }
    elif number == 4697 and source == "security":
        fields = {
            "user": account_value(flat, "Subject"),
            "name": short_value(flat.get("ServiceName")),
            "command": long_value(flat.get("ServiceFileName")),
            "detail": service_start_type(flat.get("ServiceStartType")),
        }
    elif number == 7045 and (source == "system" or _scm(flat)):
        fields = {
            "name": short_value(flat.get("ServiceName")),
            "command": long_value(flat.get("ImagePath")),
            "detail": service_start_type(flat.get("StartType")),
        }
    elif source == "security" and number == 5136:
        operation = _DS_OPERATIONS.get((text_value(flat.get("OperationType")) or "").strip())
        attribute = short_value(flat.get("AttributeLDAPDisplayName"))
        if operation is None or attribute is None:
            return None
        fields = {
            "user": account_value(flat, "Subject"),
            "name": short_value(flat.get("ObjectDN")),
            "command": long_value(flat.get("AttributeValue")),
            "detail": f"{attribute} {operation}",
        }
    elif source == "sysmon" and number in (8, 10):
        fields = {
            "pid": int_value(flat.get("SourceProcessId")),
            "image": short_value(flat.get("SourceImage")),
            "user": short_value(flat.get("SourceUser")),
            "target_pid": int_value(flat.get("TargetProcessId")),
            "target_image": short_value(flat.get("TargetImage")),
            "access": short_value(flat.get("GrantedAccess")) if number == 10 else None,
            "detail": short_value(flat.get("CallTrace")),
            "process_guid": guid_value(
                flat.get("SourceProcessGUID") or flat.get("SourceProcessGuid")
            ),
        }
    elif source == "sysmon" and number in (19, 20, 21):
        if (text_value(flat.get("Operation")) or "created").lower() != "created":
            return None
        fields = {"user": short_value(flat.get("User"))}
        if number == 19:
            fields |= {
                "name": short_value(flat.get("Name")),
                "command": long_value(flat.get("Query")),
            }
        elif number == 20:
            kind = (text_value(flat.get("Type")) or "").lower()
            name = short_value(flat.get("Name"))
            consumer = _WMI_CONSUMER_TYPES.get(kind, "EventConsumer")
            fields |= {
                "name": f'{consumer}.Name="{name.strip(chr(34))}"' if name else None,
                "command": long_value(flat.get("Destination")),
                "detail": short_value(flat.get("Type")),
            }
        else:
            fields |= {
                "name": short_value(flat.get("Consumer")),
                "detail": short_value(flat.get("Filter")),
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
    number = int_value(value)
    return (
        _START_TYPES.get(number)
        if number is not None
        else (short_value(value) or "").lower() or None
    )


def _scm(flat: Mapping[str, Any]) -> bool:
    """A raw System-channel record of the Service Control Manager (no normalised source)."""
    channel = (text_value(flat.get("Channel")) or text_value(flat.get("log_name")) or "").lower()
    provider = (
        text_value(flat.get("SourceName")) or text_value(flat.get("source_name")) or ""
    ).lower()
    return channel == "system" or provider == "service control manager"


def task_action(content: str) -> str | None:
    """What a task runs, from its XML definition (`TaskContent`): command and arguments."""
    text = html.unescape(content)
    command = _TASK_COMMAND.search(text)
    if command is None:
        return None
    arguments = _TASK_ARGUMENTS.search(text)
    action = command.group(1).strip() + (" " + arguments.group(1).strip() if arguments else "")
    return long_value(html.unescape(action))
