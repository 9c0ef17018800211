"""Processes an attacker process injected into, from one host's telemetry around an incident.

Injection: a thread an attacker process created in another process (Sysmon 8), or a handle it
opened with the rights to write memory and start a thread there (Sysmon 10), makes the target an
attacker process: its connections are the attacker's, and it may be killed. A Sysmon 10 counts
only when it looks like injection rather than ordinary handle use: called from code outside any
loaded module (`UNKNOWN(...)` in its CallTrace: shellcode, a reflectively loaded implant), or,
without a CallTrace, on a process that is not the source's own child (creating a child hands
the parent a full-access handle); and from a source that opened few processes so (one that
opens every process on the host with full rights is stealing tokens, not injecting).
"""

from __future__ import annotations

from agents.estate import is_critical_process
from agents.knowledge import image_name
from agents.persistence.attribution import done_by
from agents.processes import ProcessKey
from agents.telemetry import HostTelemetry
from tools.results import SystemEvent

REMOTE_THREAD, PROCESS_ACCESS = 8, 10
# PROCESS_VM_WRITE | PROCESS_CREATE_THREAD: what writing code into a process and running it takes
INJECTION_RIGHTS = 0x20 | 0x02
MAX_INJECTION_TARGETS = 3  # more processes opened so by one source: token theft, enumeration


def injected_processes(
    telemetry: HostTelemetry, attackers: set[ProcessKey]
) -> dict[ProcessKey, str]:
    """Processes an attacker process injected into: the process (as it was at the injection)
    -> how."""
    opened: dict[int | None, set[int]] = {}
    for event in telemetry.system:
        if event.event_id == PROCESS_ACCESS and _write_and_run(event) and event.target_pid:
            opened.setdefault(event.pid, set()).add(event.target_pid)
    injected: dict[ProcessKey, str] = {}
    for event in telemetry.system:
        if event.target_pid is None or not done_by(
            telemetry, attackers, event.pid, event.time, None, event.image
        ):
            continue
        record = telemetry.process(event.target_pid, event.time)
        target = (
            ProcessKey.of(record)
            if record is not None
            else ProcessKey.unrecorded(telemetry.host, event.target_pid, event.target_image)
        )
        if target in attackers or is_critical_process(event.target_image):
            continue
        if event.event_id == REMOTE_THREAD:
            how = "a thread created in it"
        elif (
            event.event_id == PROCESS_ACCESS
            and _write_and_run(event)
            and len(opened.get(event.pid, ())) <= MAX_INJECTION_TARGETS
            and _injecting_caller(event, telemetry)
        ):
            how = f"its memory opened for writing ({event.access})"
        else:
            continue
        injected.setdefault(target, f"{how} by {image_name(event.image)} ({event.pid})")
    return injected


def _write_and_run(event: SystemEvent) -> bool:
    return _rights(event.access) & INJECTION_RIGHTS == INJECTION_RIGHTS


def _injecting_caller(event: SystemEvent, telemetry: HostTelemetry) -> bool:
    if event.detail:
        return "unknown(" in event.detail.lower()
    target = telemetry.process(event.target_pid, event.time)
    return target is None or target.parent_pid != event.pid


def _rights(access: str | None) -> int:
    text = (access or "").strip().lower()
    try:
        return int(text, 16) if text.startswith("0x") else int(text or "0")
    except ValueError:
        return 0
