"""Alerts that the platform's own machinery raised: they stop counting toward the verdict and the
category.

A monitoring or fleet-management agent runs scripts as SYSTEM from its install folder (cloud VM
agents, configuration managers, monitoring agents): a process-creation rule tagged with a
credential-dumping technique that fires on such a script says the agent ran, not that secrets
left. Left in, one such background alert turns an exploitation or scheduled-task incident into
"credential access" (so the account is disabled instead of the process stopped), and alone it
can reach the malicious threshold.

An alert is maintenance only when every record of its process shows it: run by a system account,
the program, its parent, or the script a script host runs lives in a management agent's install
folder, and the command line carries no strong tradecraft (an encoded command, a download
cradle, a credential tool). Without a record, the alert's own process fields must show the same.
An alert that names no process is never maintenance: nothing proves whose it is.

Windows' own session components (`processes.yaml` `session_components`: Explorer, the runtime
broker, the search and shell hosts) keep the user's profile at every logon: Explorer trims its
RunMRU list, the broker backs up app data into the profile, and generic file and registry rules
fire on it. Such an alert is the session's housekeeping when nothing shows the component taken
over or used for the attack: the alert's command line has no tradecraft and its file is not in
a drop folder (Explorer stripping a downloaded payload's mark of the web is the attack's step);
every record of the process runs it from the Windows folder, from a parent that is neither a
shell nor in a user-writable folder; and the telemetry shows no shell or drop-folder program
started by it (the user's double-click on the payload) and no thread or code-writing handle
another process opened into it (injection). The alert must name the process: no process, no
proof.

A maintenance program's name alone (svchost, taskhostw, msiexec run by SYSTEM) is not enough:
those processes host the Task Scheduler and the service manager, which write the attacker's
scheduled tasks and services on its behalf; the telemetry judgement (`agents/telemetry.py`)
already discounts them where they show nothing else.
"""

from __future__ import annotations

import re

from agents.estate import in_drop_folder
from agents.knowledge import (
    SESSION_COMPONENTS,
    SHELLS,
    cmdline_indicators,
    image_name,
    in_user_writable_dir,
    is_management_agent,
    is_system_account,
)
from agents.telemetry import HostTelemetry, alert_records
from tools.models import Alert
from tools.results import ProcessEvent

# Command-line tradecraft at or above this weight is the attacker's whatever folder it names.
STRONG_TRADECRAFT = 3.0
WINDOWS_FOLDER = re.compile(
    r"^([a-z]:\\windows\\|\\device\\harddiskvolume\d+\\windows\\|\\systemroot\\|%systemroot%\\)",
    re.I,
)
REMOTE_THREAD, PROCESS_ACCESS = 8, 10  # Sysmon: a thread created in, a handle opened to a process
INJECTION_RIGHTS = 0x20 | 0x02  # PROCESS_VM_WRITE | PROCESS_CREATE_THREAD
# Programs that run a script named on their command line: the script's folder says whose it is.
SCRIPT_HOSTS: frozenset[str] = frozenset(
    {"powershell.exe", "pwsh.exe", "cmd.exe", "cscript.exe", "wscript.exe"}
)


def _explicit_system(user: str | None) -> bool:
    """A system account named as such: no user at all proves nothing."""
    return bool(user and user.strip()) and is_system_account(user)


def _platform_process(
    image: str | None, parent: str | None, cmd_line: str | None, user: str | None
) -> bool:
    if not _explicit_system(user):
        return False
    if sum(w for w, _ in cmdline_indicators(cmd_line)) >= STRONG_TRADECRAFT:
        return False
    if is_management_agent(image) or is_management_agent(parent):
        return True
    runs_script = image_name(image) in SCRIPT_HOSTS
    return runs_script and is_management_agent(cmd_line)


def maintenance_reason(alert: Alert, telemetry: HostTelemetry | None) -> str | None:
    """Why the alert is the platform's own maintenance, or None when it is not proven."""
    process = alert.entities.process
    if process is None:
        return None
    records = alert_records(alert, telemetry) if telemetry is not None else []
    if telemetry is not None and records:
        # the parent's own record first: some EDRs name only the parent's file in the child's
        proven = all(
            _platform_process(
                r.image or r.name, telemetry.parent_path(r) or r.parent_image, r.cmd_line, r.user
            )
            for r in records
        )
    else:
        proven = _platform_process(process.name, None, process.cmd_line, alert.entities.user)
    if not proven:
        return _session_housekeeping(alert, telemetry, records)
    name = image_name(process.name) or (image_name(records[0].image) if records else "")
    return f"alert {alert.uid}: {name} run by SYSTEM from a management agent's folder"


def _session_housekeeping(
    alert: Alert, telemetry: HostTelemetry | None, records: list[ProcessEvent]
) -> str | None:
    """Why the alert is a session component keeping the user's profile (module docstring)."""
    process = alert.entities.process
    if process is None or telemetry is None:
        return None
    name = image_name(process.name) or (image_name(records[0].image) if records else "")
    if name not in SESSION_COMPONENTS or cmdline_indicators(process.cmd_line):
        return None
    if alert.entities.file is not None and in_drop_folder(alert.entities.file.path):
        return None  # what it did to a hand-brought file (its mark of the web) is the attack's
    for record in records:
        parent = telemetry.parent_path(record) or record.parent_image or ""
        if not _in_windows_folder(record.image) or cmdline_indicators(record.cmd_line):
            return None
        if image_name(parent) in SHELLS or in_user_writable_dir(parent):
            return None
    pids = {r.pid for r in records} | ({process.pid} if process.pid is not None else set())
    if not pids - {None} or _taken_over(telemetry, pids - {None}, name):
        return None
    return f"alert {alert.uid}: {name}, a Windows session component, keeping the user's profile"


def _in_windows_folder(image: str | None) -> bool:
    return bool(WINDOWS_FOLDER.match((image or "").strip()))


def _taken_over(telemetry: HostTelemetry, pids: set[int | None], name: str) -> bool:
    """A shell or a drop-folder program started by the component (the user's double-click on the
    payload), or a thread or code-writing handle opened into it."""
    for p in telemetry.processes:
        launched = image_name(p.image or p.name) in SHELLS or in_drop_folder(p.image)
        if launched and p.parent_pid in pids and image_name(p.parent_image) in ("", name):
            return True
    for event in telemetry.system:
        if event.target_pid not in pids or event.pid in pids:
            continue
        if image_name(event.target_image) not in ("", name):
            continue
        if event.event_id == REMOTE_THREAD:
            return True
        if event.event_id == PROCESS_ACCESS and _writes_code(event.access):
            return True
    return False


def _writes_code(access: str | None) -> bool:
    try:
        rights = int((access or "0").strip(), 16)
    except ValueError:
        return False
    return rights & INJECTION_RIGHTS == INJECTION_RIGHTS
