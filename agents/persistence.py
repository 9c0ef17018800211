"""Persistence artefacts and injected processes, from one host's telemetry around an incident.

Persistence is often written by a service on the attacker's behalf, not by the attacker's own
process: the Task Scheduler (svchost) writes a task's file and TaskCache keys after `schtasks
/create`, services.exe writes a service's key after a remote `sc create`, WMI keeps a
subscription in its repository, a web server writes the web shell its exploited page uploaded.
So an artefact is recognised by what was registered (the task, the service, the consumer, the
script file) and attributed by who asked for it or what it runs:

- autostart values and files (Run keys, services' ImagePath, Winlogon, logon scripts, the
  Startup folder: `agents.knowledge`) written by an attacker process, or by a critical process
  acting for it (services.exe setting the ImagePath `sc config` asked for);
- scheduled tasks, one per task name whatever recorded it (Security 4698/4702, the TaskCache
  tree key, the file under `\\Windows\\System32\\Tasks\\`, whoever wrote those), when an attacker
  process registered it (its `schtasks /create /tn` or `Register-ScheduledTask -TaskName`, or the
  registering client process of the 4698), its action is hostile, or a compromised account
  registered it with an action that is a shell or lives in a user-writable folder;
- services (System 7045, Security 4697) that start on their own (boot, system or auto start),
  when the image path is hostile, or a compromised account installed it (4697's subject, or a
  network logon of that account or from a compromised host just before the install: a remote
  install) with an image outside the installed programs. A demand-start service is how PsExec,
  smbexec and getsystem run one command (remote execution, T1569.002): it does not come back
  by itself, and removing it is not the containment;
- WMI subscriptions (Sysmon 20 consumers, 21 bindings), when the consumer's command is hostile or
  a compromised account created it;
- web shells: a new server-side script (.asp, .aspx, .ashx, .php, .jsp, .jspx) under a web root
  written by the web server's own process; a writer that drops many at once is a deployment.

Conservative by design: an updater registering its task as SYSTEM, a Program Files binary
installed as a service, the SCM's event-log consumer are nobody's attack. Each artefact carries
its removal target, `<asset id>:<artefact>`: the value path, the file path, the task name
(`\\Updater`), the service name (or its ImagePath value path when the write was recorded, the
form the other rules give), the consumer (`CommandLineEventConsumer.Name="x"`).

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

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from agents.estate import in_drop_folder, is_critical_process
from agents.knowledge import (
    MAINTENANCE_PROCESSES,
    SHELLS,
    cmdline_indicators,
    image_name,
    in_user_writable_dir,
    is_autostart_file,
    is_autostart_key,
    is_system_account,
)
from agents.processes import ProcessKey
from agents.telemetry import REMOTE_LOGON_TYPES, HostTelemetry
from tools.results import SystemEvent

TASK_REGISTERED = (4698, 4702)
SYSTEM_SERVICE_INSTALLED, SECURITY_SERVICE_INSTALLED = 7045, 4697
SERVICE_INSTALLED = (SYSTEM_SERVICE_INSTALLED, SECURITY_SERVICE_INSTALLED)
SAME_INSTALL = timedelta(seconds=10)  # a 7045 and a 4697 this close, same image: one install
WMI_CONSUMER, WMI_BINDING = 20, 21
REMOTE_THREAD, PROCESS_ACCESS = 8, 10
# PROCESS_VM_WRITE | PROCESS_CREATE_THREAD: what writing code into a process and running it takes
INJECTION_RIGHTS = 0x20 | 0x02
MAX_INJECTION_TARGETS = 3  # more processes opened so by one source: token theft, enumeration
REMOTE_INSTALL_WINDOW = timedelta(minutes=2)
MAX_WEB_SCRIPTS = 5  # more new scripts from one writer than this is a deployment, not a shell
HOSTILE_ACTION = 2.0  # command-line tradecraft weight that makes an action the attacker's

WEB_SCRIPT = re.compile(r"\.(aspx?|ashx|php\d?|phtml|jspx?)$", re.I)
WEB_ROOTS = ("\\inetpub\\wwwroot\\", "\\var\\www\\", "\\webapps\\", "\\htdocs\\")
WEB_SERVERS = re.compile(
    r"^(w3wp|httpd|apache2?|nginx|php-fpm[\d.]*|php-cgi|tomcat\d*|java)(\.exe)?$", re.I
)
# a task's tree key and its values (Id, Index, SD): the task's name is the path under Tree
TASK_CACHE = re.compile(r"\\schedule\\taskcache\\tree(\\.+?)(\\(id|index|sd))?$", re.I)
TASK_FOLDER = re.compile(r"\\windows\\system32\\tasks(\\.+)$", re.I)
TASK_CREATE = re.compile(
    r"(schtasks(\.exe)?\b.*[/-]create\b.*[/-]tn\s+|register-scheduledtask\b.*-taskname\s+)"
    r"(\"[^\"]+\"|'[^']+'|\S+)",
    re.I | re.S,
)
SERVICE_KEY = re.compile(r"\\currentcontrolset\\services\\([^\\]+)\\imagepath$", re.I)
CONSUMER_NAME = re.compile(r"(\w*consumer)\.name\s*=\s*\"?([^\"]+)\"?", re.I)
INSTALLED_PROGRAMS = ("\\program files\\", "\\program files (x86)\\")
AUTOSTART_SERVICES = frozenset({"boot start", "system start", "auto start"})


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


def find_artefacts(telemetry: HostTelemetry, attacker: Attacker) -> list[Artefact]:
    """The attacker's persistence on one host, one artefact per removal target."""
    found: dict[str, Artefact] = {}
    for artefact in [
        *_autostart(telemetry, attacker),
        *_tasks(telemetry, attacker),
        *_services(telemetry, attacker),
        *_wmi(telemetry, attacker),
        *_web_shells(telemetry),
    ]:
        found.setdefault(artefact.target.lower(), artefact)
    return list(found.values())


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


# --- autostart values and files ------------------------------------------------------------


def _autostart(telemetry: HostTelemetry, attacker: Attacker) -> list[Artefact]:
    host = telemetry.host
    found: list[Artefact] = []
    for write in telemetry.registry:
        if not is_autostart_key(write.key) or not done_by(
            telemetry, attacker.writers, write.pid, write.time, write.process_guid, write.image
        ):
            continue
        if (write.operation or "SetValue").lower() not in ("setvalue", "createkey"):
            continue
        found.append(
            Artefact(
                f"{host}:{write.key}",
                f"autostart value {write.key} written on {host}",
                f"by {image_name(write.image)} ({write.pid})",
            )
        )
    for created in telemetry.files:
        if not is_autostart_file(created.path) or not done_by(
            telemetry,
            attacker.writers,
            created.pid,
            created.time,
            created.process_guid,
            created.image,
        ):
            continue
        if TASK_FOLDER.search(created.path):
            continue  # a task's file is the task: `_tasks` names it once
        found.append(
            Artefact(
                f"{host}:{created.path}",
                f"file {created.path} created in an autostart folder",
                f"on {host} by {image_name(created.image)} ({created.pid})",
            )
        )
    return found


# --- scheduled tasks -------------------------------------------------------------------------


def task_key(name: str) -> str:
    """`Updater`, `\\Updater`, `"\\Updater"` -> `\\updater` (one key per task, any spelling)."""
    text = name.strip().strip("\"'").strip().replace("/", "\\")
    return "\\" + text.lstrip("\\").lower() if text else ""


def _task_name(name: str) -> str:
    text = name.strip().strip("\"'").strip().replace("/", "\\")
    return "\\" + text.lstrip("\\")


def _tasks(telemetry: HostTelemetry, attacker: Attacker) -> list[Artefact]:
    names: dict[str, str] = {}  # key -> spelling
    why: dict[str, str] = {}  # key -> why it is the attacker's
    registered: set[str] = set()
    for process in telemetry.processes:
        match = TASK_CREATE.search(process.cmd_line or "")
        if match and ProcessKey.of(process) in attacker.processes:
            key = task_key(match.group(3))
            names.setdefault(key, _task_name(match.group(3)))
            why.setdefault(key, f"created by {image_name(process.image)} ({process.pid})")
    # the TaskCache key and the task file name the task; the Task Scheduler writes both, so
    # their writer counts only when it is the attacker's own process
    records = [(w, TASK_CACHE.search(w.key)) for w in telemetry.registry]
    records += [(f, TASK_FOLDER.search(f.path)) for f in telemetry.files]
    for record, match in records:
        if match is None:
            continue
        key = task_key(match.group(1))
        registered.add(key)
        names.setdefault(key, _task_name(match.group(1)))
        if done_by(
            telemetry,
            attacker.processes,
            record.pid,
            record.time,
            record.process_guid,
            record.image,
        ):
            why.setdefault(key, f"written by {image_name(record.image)} ({record.pid})")
    for event in telemetry.system:
        if event.event_id not in TASK_REGISTERED or not event.name:
            continue
        key = task_key(event.name)
        registered.add(key)
        names[key] = _task_name(event.name)
        if (reason := _registration_reason(event, attacker, telemetry)) is not None:
            why.setdefault(key, reason)
    host = telemetry.host
    return [
        Artefact(f"{host}:{names[key]}", f"scheduled task {names[key]} on {host}", why[key])
        for key in sorted(registered & set(why))
    ]


def _registration_reason(
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


# --- services ------------------------------------------------------------------------------


def _services(telemetry: HostTelemetry, attacker: Attacker) -> list[Artefact]:
    host = telemetry.host
    keys = {
        m.group(1).lower(): w.key for w in telemetry.registry if (m := SERVICE_KEY.search(w.key))
    }
    found: dict[str, Artefact] = {}
    events = [e for e in telemetry.system if e.event_id in SERVICE_INSTALLED and e.name]
    for event in events:
        if (event.detail or "").lower() not in AUTOSTART_SERVICES:
            continue
        if _named_by_security(event, events):
            continue
        reason = _registration_reason(event, attacker, telemetry) or _remote_install(
            event, telemetry, attacker
        )
        if reason is None:
            continue
        name = (event.name or "").strip()
        target = f"{host}:{keys.get(name.lower(), name)}"
        found.setdefault(
            name.lower(), Artefact(target, f"service {name} installed on {host}", reason)
        )
    return list(found.values())


def _named_by_security(event: SystemEvent, events: list[SystemEvent]) -> bool:
    """A record of an install that names no installer (System 7045) beside one that does
    (Security 4697; an EDR may report both under one event type) for the same image within
    seconds: 7045 gives the display name, 4697 the service's key name, which is what removal
    takes; one install is one artefact."""
    if event.user:
        return False
    image = (event.command or "").strip().lower()
    return any(
        other.user
        and (other.command or "").strip().lower() == image
        and abs(other.time - event.time) <= SAME_INSTALL
        for other in events
    )


def _remote_install(event: SystemEvent, telemetry: HostTelemetry, attacker: Attacker) -> str | None:
    """A service installed just after a network logon of a compromised account, or from a
    compromised host: the remote `sc create` / PsExec pattern. Installed programs excepted, and
    an install recorded as done by SYSTEM or a machine account (4697's subject): a remote caller
    is the subject of its own install; the machine's are Windows' own (per-user service
    instances at each logon)."""
    if installed_program(event.command or ""):
        return None
    if event.user and is_system_account(event.user):
        return None
    for logon in telemetry.logons:
        if not (logon.success and logon.logon_type in REMOTE_LOGON_TYPES and logon.src_ip):
            continue
        if not timedelta(0) <= event.time - logon.time <= REMOTE_INSTALL_WINDOW:
            continue
        account = short_account(logon.user)
        by_account = not is_system_account(logon.user) and account in attacker.accounts
        if by_account or logon.src_ip in attacker.sources:
            return f"installed remotely from {logon.src_ip} as {logon.user}"
    return None


# --- WMI subscriptions -----------------------------------------------------------------------


def _consumer(text: str | None) -> tuple[str, str] | None:
    """`\\\\.\\root\\subscription:CommandLineEventConsumer.Name="x"` -> (class, name)."""
    match = CONSUMER_NAME.search(text or "")
    return (match.group(1), match.group(2).strip()) if match else None


def _wmi(telemetry: HostTelemetry, attacker: Attacker) -> list[Artefact]:
    host = telemetry.host
    consumers: dict[str, tuple[str, str | None]] = {}  # name -> (target, reason)
    for event in telemetry.system:
        if event.event_id not in (WMI_CONSUMER, WMI_BINDING):
            continue
        parsed = _consumer(event.name)
        if parsed is None:
            continue
        kind, name = parsed
        target = f'{host}:{kind}.Name="{name}"'
        reason = None
        compromised = not is_system_account(event.user) and (
            short_account(event.user) in attacker.accounts
        )
        if event.event_id == WMI_CONSUMER and event.command and hostile_action(event.command):
            reason = f"runs {event.command[:200]}"
        elif compromised:
            reason = f"created by {event.user}"
        known_target, known_reason = consumers.get(name.lower(), (target, None))
        consumers[name.lower()] = (known_target, known_reason or reason)
    return [
        Artefact(target, f"WMI subscription {target.split(':', 1)[1]} on {host}", reason)
        for target, reason in consumers.values()
        if reason is not None
    ]


# --- web shells ------------------------------------------------------------------------------


def is_web_shell_write(path: str, image: str | None) -> bool:
    lowered = path.replace("/", "\\").lower()
    return (
        bool(WEB_SCRIPT.search(lowered))
        and any(root in lowered for root in WEB_ROOTS)
        and bool(WEB_SERVERS.match(image_name(image)))
    )


def _web_shells(telemetry: HostTelemetry) -> list[Artefact]:
    host = telemetry.host
    writes = [f for f in telemetry.files if is_web_shell_write(f.path, f.image)]
    per_writer: dict[tuple[str, int | None], int] = {}
    for write in writes:
        writer = (image_name(write.image), write.pid)
        per_writer[writer] = per_writer.get(writer, 0) + 1
    return [
        Artefact(
            f"{host}:{write.path}",
            f"web shell {write.path} written on {host}",
            f"by the web server {image_name(write.image)} ({write.pid})",
        )
        for write in writes
        if per_writer[(image_name(write.image), write.pid)] <= MAX_WEB_SCRIPTS
    ]


def _rights(access: str | None) -> int:
    text = (access or "").strip().lower()
    try:
        return int(text, 16) if text.startswith("0x") else int(text or "0")
    except ValueError:
        return 0
