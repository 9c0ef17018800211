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

A maintenance program's name alone (svchost, taskhostw, msiexec run by SYSTEM) is not enough:
those processes host the Task Scheduler and the service manager, which write the attacker's
scheduled tasks and services on its behalf; the telemetry judgement (`agents/telemetry.py`)
already discounts them where they show nothing else.
"""

from __future__ import annotations

from agents.knowledge import (
    cmdline_indicators,
    image_name,
    is_management_agent,
    is_system_account,
)
from agents.telemetry import HostTelemetry, alert_records
from tools.models import Alert

# Command-line tradecraft at or above this weight is the attacker's whatever folder it names.
STRONG_TRADECRAFT = 3.0
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
        return None
    name = image_name(process.name) or (image_name(records[0].image) if records else "")
    return f"alert {alert.uid}: {name} run by SYSTEM from a management agent's folder"
