"""Falcon sensor events that answer `EdrReader.system_events`, mapped to `SystemEvent` with the
Windows event numbers the agents reason in.

- `ScheduledTaskRegistered` (4698) and `ScheduledTaskModified` (4702): `TaskName`,
  `TaskExecCommand` + `TaskExecArguments`, `TaskAuthor`, `RpcClientProcessId` (the registrar);
- `CreateService` (7045): `ServiceDisplayName`, `ServiceImagePath`, `ServiceStart` (the start
  type's number), `UserName`, `RpcClientProcessId`;
- `InjectedThread` (8): `ContextProcessId` and `ContextImageFileName` (the injector),
  `TargetProcessId` (the process the thread was created in);
- `WmiFilterConsumerBindingEtw` (21): `ConsumerName`, `FilterName`, `UserName`.

What Falcon has no event for, and this vendor therefore never answers: a handle opened to
another process with its access mask (Sysmon 10: Falcon reports only its own verdicts on
handles, e.g. to LSASS, not every `OpenProcess`), and a WMI filter or consumer created on its own
(Sysmon 19/20: Falcon reports the binding). An agent reading Falcon sees injections only as
injected threads, and WMI persistence only as bindings.

`InjectedThread` names the target process by id only: `target_image` is filled from the host's
process events by the adapter (`with_target_images`). Ids are reported as they come (Falcon's
own process ids, as for the other events of this adapter).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tools.edr.crowdstrike_events import row_time, row_user
from tools.edr.wire import wire_int, wire_text
from tools.results import ProcessEvent, SystemEvent
from tools.system_events import service_start_type

TASK_REGISTERED, TASK_MODIFIED = "ScheduledTaskRegistered", "ScheduledTaskModified"
SERVICE_CREATED = "CreateService"
INJECTED_THREAD = "InjectedThread"
WMI_BINDING = "WmiFilterConsumerBindingEtw"
SYSTEM_EVENTS = (TASK_REGISTERED, TASK_MODIFIED, SERVICE_CREATED, INJECTED_THREAD, WMI_BINDING)
# The Windows events each Falcon event stands for; the kinds absent here Falcon does not report.
EVENT_IDS = {
    TASK_REGISTERED: 4698,
    TASK_MODIFIED: 4702,
    SERVICE_CREATED: 7045,
    INJECTED_THREAD: 8,
    WMI_BINDING: 21,
}


def to_system_event(row: Mapping[str, Any]) -> SystemEvent | None:
    name, time = row.get("#event_simpleName"), row_time(row)
    host = wire_text(row.get("ComputerName"))
    number = EVENT_IDS.get(str(name))
    if number is None or time is None or host is None:
        return None
    fields: dict[str, Any]
    if name in (TASK_REGISTERED, TASK_MODIFIED):
        command = wire_text(row.get("TaskExecCommand"), 16_384)
        arguments = wire_text(row.get("TaskExecArguments"), 16_384)
        fields = {
            "pid": wire_int(row.get("RpcClientProcessId")),
            "user": wire_text(row.get("TaskAuthor")) or row_user(row),
            "name": wire_text(row.get("TaskName")),
            "command": f"{command} {arguments}" if command and arguments else command,
        }
    elif name == SERVICE_CREATED:
        fields = {
            "pid": wire_int(row.get("RpcClientProcessId")),
            "user": row_user(row),
            "name": wire_text(row.get("ServiceDisplayName")),
            "command": wire_text(row.get("ServiceImagePath"), 16_384),
            "detail": service_start_type(row.get("ServiceStart")),
        }
    elif name == INJECTED_THREAD:
        fields = {
            "pid": wire_int(row.get("ContextProcessId")),
            "image": wire_text(row.get("ContextImageFileName")),
            "user": row_user(row),
            "target_pid": wire_int(row.get("TargetProcessId")),
        }
    else:
        fields = {
            "user": row_user(row),
            "name": wire_text(row.get("ConsumerName")),
            "detail": wire_text(row.get("FilterName")),
        }
    return SystemEvent(time=time, host=host, event_id=number, **fields)


def with_target_images(
    events: list[SystemEvent], processes: list[ProcessEvent]
) -> list[SystemEvent]:
    """Injected threads with their target's image, from the latest start of that process id at or
    before the injection (ids are reused: an earlier start of the same id is another process)."""
    images: dict[int, list[ProcessEvent]] = {}
    for process in processes:
        if process.pid is not None and process.image:
            images.setdefault(process.pid, []).append(process)
    resolved = []
    for event in events:
        if event.target_pid is not None and event.target_image is None:
            started = [p for p in images.get(event.target_pid, []) if p.time <= event.time]
            if started:
                latest = max(started, key=lambda p: p.time)
                event = event.model_copy(update={"target_image": latest.image})
        resolved.append(event)
    return resolved
