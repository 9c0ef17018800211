"""Defender advanced-hunting `DeviceEvents` rows that answer `EdrReader.system_events`, mapped to
`SystemEvent` with the Windows event numbers the agents reason in.

- `ScheduledTaskCreated` (4698), `ScheduledTaskUpdated` (4702): `AdditionalFields.TaskName`
  and `.TaskContent` (the task's XML, whose `<Exec>` action is the command);
- `ServiceInstalled` (7045): `AdditionalFields.ServiceName`, `.ServiceStartType`; `FolderPath`
  (the service's image);
- `CreateRemoteThreadApiCall` (8), `OpenProcessApiCall` (10): `ProcessId` and `FolderPath` (the
  target), and for the latter `AdditionalFields.DesiredAccess` (a number);
- `WmiBindEventFilterToConsumer` (21): `AdditionalFields.Consumer`, `.Filter`.

Every row's acting process and account are the `InitiatingProcess*` columns. What Defender does
not give, and this vendor therefore never answers: a handle open's call trace (Sysmon 10's
`CallTrace`: the agents then judge an opened process by its parentage alone), a service's
arguments (`FolderPath` is the image, not the `ImagePath` command line), and a WMI filter or
consumer created on its own (Sysmon 19/20).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from tools.edr.defender_hunting import account, row_time
from tools.edr.wire import wire_int, wire_text
from tools.results import SystemEvent
from tools.system_events import service_start_type, task_action

EVENTS = "DeviceEvents"
# The Windows events each ActionType stands for; the kinds absent here Defender does not report.
ACTION_EVENT_IDS = {
    "ScheduledTaskCreated": 4698,
    "ScheduledTaskUpdated": 4702,
    "ServiceInstalled": 7045,
    "CreateRemoteThreadApiCall": 8,
    "OpenProcessApiCall": 10,
    "WmiBindEventFilterToConsumer": 21,
}


def to_system_event(row: Mapping[str, Any]) -> SystemEvent | None:
    time, host = row_time(row), wire_text(row.get("DeviceName"))
    number = ACTION_EVENT_IDS.get(str(row.get("ActionType")))
    if number is None or time is None or host is None:
        return None
    extra = additional_fields(row.get("AdditionalFields"))
    fields: dict[str, Any] = {
        "pid": wire_int(row.get("InitiatingProcessId")),
        "image": wire_text(row.get("InitiatingProcessFolderPath")),
        "user": account(row, "InitiatingProcessAccount"),
    }
    if number in (4698, 4702):
        fields |= {
            "name": wire_text(extra.get("TaskName")),
            "command": task_action(wire_text(extra.get("TaskContent"), 65_536) or ""),
        }
    elif number == 7045:
        fields |= {
            "name": wire_text(extra.get("ServiceName")),
            "command": wire_text(row.get("FolderPath"), 16_384),
            "detail": service_start_type(extra.get("ServiceStartType")),
        }
    elif number in (8, 10):
        access = wire_int(extra.get("DesiredAccess"))
        fields |= {
            "target_pid": wire_int(row.get("ProcessId")),
            "target_image": wire_text(row.get("FolderPath")),
            "access": f"0x{access:x}" if number == 10 and access is not None else None,
        }
    else:
        fields |= {
            "name": wire_text(extra.get("Consumer")),
            "detail": wire_text(extra.get("Filter")),
        }
    return SystemEvent(time=time, host=host, event_id=number, **fields)


def additional_fields(value: Any) -> dict[str, Any]:
    """`AdditionalFields` is a dynamic column: the API returns it as a JSON string (or an
    object); anything else is empty."""
    if isinstance(value, dict):
        return value
    if isinstance(value, str):
        try:
            parsed = json.loads(value)
        except ValueError:
            return {}
        return parsed if isinstance(parsed, dict) else {}
    return {}
