"""The attacker's persistence on one host, from its telemetry around an incident.

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
"""

from __future__ import annotations

import re
from datetime import timedelta

from agents.knowledge import image_name, is_autostart_file, is_autostart_key, is_system_account
from agents.persistence.attribution import (
    SERVICE_INSTALLED,
    TASK_REGISTERED,
    Artefact,
    Attacker,
    done_by,
    hostile_action,
    installed_program,
    registration_reason,
    short_account,
)
from agents.processes import ProcessKey
from agents.telemetry import REMOTE_LOGON_TYPES, HostTelemetry
from tools.results import SystemEvent

SAME_INSTALL = timedelta(seconds=10)  # a 7045 and a 4697 this close, same image: one install
WMI_CONSUMER, WMI_BINDING = 20, 21
REMOTE_INSTALL_WINDOW = timedelta(minutes=2)
MAX_WEB_SCRIPTS = 5  # more new scripts from one writer than this is a deployment, not a shell

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
AUTOSTART_SERVICES = frozenset({"boot start", "system start", "auto start"})


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
        if (reason := registration_reason(event, attacker, telemetry)) is not None:
            why.setdefault(key, reason)
    host = telemetry.host
    return [
        Artefact(f"{host}:{names[key]}", f"scheduled task {names[key]} on {host}", why[key])
        for key in sorted(registered & set(why))
    ]


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
        reason = registration_reason(event, attacker, telemetry) or _remote_install(
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
