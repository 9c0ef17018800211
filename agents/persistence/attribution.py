"""Who did it: what the investigation holds against the attacker on a host (`Attacker`), whether
an event was done by one of its processes (`done_by`: pids are reused), and the judgements of a
registered command that tell a task or a service registered for the attacker from an installer's
(`registration_reason`: registered by an attacker process, a hostile action, or a compromised
account registering a shell, a user-writable program or anything outside Program Files).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from agents.estate import in_drop_folder
from agents.knowledge import (
    MAINTENANCE_PROCESSES,
    SHELLS,
    cmdline_indicators,
    image_name,
    in_user_writable_dir,
    is_system_account,
)
from agents.processes import ProcessKey
from agents.telemetry import HostTelemetry
from tools.results import SystemEvent

TASK_REGISTERED = (4698, 4702)
SYSTEM_SERVICE_INSTALLED, SECURITY_SERVICE_INSTALLED = 7045, 4697
SERVICE_INSTALLED = (SYSTEM_SERVICE_INSTALLED, SECURITY_SERVICE_INSTALLED)
HOSTILE_ACTION = 2.0  # command-line tradecraft weight that makes an action the attacker's
INSTALLED_PROGRAMS = ("\\program files\\", "\\program files (x86)\\")


@dataclass(frozen=True)
class Artefact:
    target: str  # `<asset id>:<artefact>`: what remove_persistence names
    summary: str  # what was found, for the report
    evidence: str  # who wrote or registered it


@dataclass(frozen=True)
class Attacker:
    """What the investigation already holds against the attacker on this host."""

    writers: frozenset[ProcessKey]  # attacker processes, and critical ones acting for them
    processes: frozenset[ProcessKey]  # attacker processes
    accounts: frozenset[str]  # compromised accounts, lowercased short names
    sources: frozenset[str]  # addresses of compromised hosts


def done_by(
    telemetry: HostTelemetry,
    processes: frozenset[ProcessKey] | set[ProcessKey],
    pid: int | None,
    when: datetime,
    guid: str | None = None,
    image: str | None = None,
) -> bool:
    """Whether an event stamped `pid` at `when` was done by one of `processes`: the process that
    had that pid then (pids are reused), or an alerting process known without its record."""
    writer = telemetry.writer(pid, when, guid, image)
    if writer is not None:
        return writer in processes
    name = "" if (image or "").lstrip().startswith("<") else image_name(image)  # <unknown process>
    return any(
        k.start is None and k.pid == pid and (not name or image_name(k.image) in ("", name))
        for k in processes
    )


def short_account(user: str | None) -> str:
    return (user or "").strip().lower().rsplit("\\", 1)[-1].split("@", 1)[0]


def registration_reason(
    event: SystemEvent, attacker: Attacker, telemetry: HostTelemetry
) -> str | None:
    """Why a registered task or installed service is the attacker's, or None."""
    command = event.command or ""
    if event.pid is not None and done_by(
        telemetry, attacker.processes, event.pid, event.time, None, event.image
    ):
        return f"registered by {image_name(event.image) or 'process'} ({event.pid})"
    if hostile_action(command):
        return f"runs {command[:200]}"
    account = short_account(event.user)
    if not is_system_account(event.user) and account in attacker.accounts:
        if event.event_id in TASK_REGISTERED and user_action(command):
            return f"registered by {event.user}, runs {command[:200]}"
        if event.event_id in SERVICE_INSTALLED and not installed_program(command):
            return f"installed by {event.user}, runs {command[:200]}"
    return None


def hostile_action(command: str) -> bool:
    """What no installer registers: tradecraft in the command, or a program in a drop or temp
    folder."""
    lowered = command.lower()
    weight = sum(w for w, _ in cmdline_indicators(command))
    return weight >= HOSTILE_ACTION or in_drop_folder(command) or "\\temp\\" in lowered


def user_action(command: str) -> bool:
    """A shell, a script host, or a program in a user-writable folder (not a known updater)."""
    program = _program(command)
    name = image_name(program)
    if name in MAINTENANCE_PROCESSES:
        return False
    return hostile_action(command) or name in SHELLS or in_user_writable_dir(command)


def installed_program(command: str) -> bool:
    """An image under Program Files without tradecraft: installed software."""
    lowered = _program(command).lower()
    return any(d in lowered for d in INSTALLED_PROGRAMS) and not hostile_action(command)


def _program(command: str) -> str:
    text = command.strip()
    if text.startswith('"'):
        return text[1:].split('"', 1)[0]
    match = re.match(r"(.+?\.(exe|bat|cmd|ps1|vbs|js|dll))\b", text, re.I)
    return match.group(1) if match else text.split(" ", 1)[0]
