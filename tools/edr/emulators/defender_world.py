"""The state of the Defender emulator and how a recorded incident seeds it: one machine per asset
(and per sensor that sent telemetry), the recording as advanced-hunting rows of the Device*
tables, the processes they show running, what `garrison.ps1` answers on a machine, and the
recording's alerts as Microsoft Graph security alerts (`add_alert` adds more at runtime)."""

from __future__ import annotations

import hashlib
import html
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tools.edr.defender_hunting import LOGON_TYPES, REGISTRY_ACTIONS
from tools.edr.defender_system import ACTION_EVENT_IDS, EVENTS
from tools.edr.emulators.alert_shapes import graph_alert
from tools.models import Alert, Environment
from tools.names import host_key
from tools.telemetry import Telemetry, writer_pid

_LOGON_NAMES = {number: name for name, number in LOGON_TYPES.items()}
_REGISTRY_ACTIONS = {name: action for action, name in REGISTRY_ACTIONS.items()}
_ACTIONS = {number: action for action, number in ACTION_EVENT_IDS.items()}
_ACTIONS[4697] = "ServiceInstalled"  # Security's record of a service install, as System's 7045
_START_CODES = {
    "boot start": 0,
    "system start": 1,
    "auto start": 2,
    "demand start": 3,
    "disabled": 4,
}
_LONG_HIVES = (("HKLM\\", "HKEY_LOCAL_MACHINE\\"), ("HKU\\", "HKEY_USERS\\"))
_HEX = re.compile(r"0x[0-9a-fA-F]+")
_PROGRAM = re.compile(r"(.+?\.(exe|bat|cmd|ps1|vbs|js|dll|sys))\b", re.I)
LIVE = ("Pending", "InProgress", "Succeeded")


@dataclass
class DefenderWorld:
    tenant_id: str = "emulator-tenant"
    client_id: str = "garrison-emulator"
    client_secret: str = "emulator-secret"  # noqa: S105  (the emulator's own credential)
    token_ttl_s: int = 3599
    tokens: dict[str, float] = field(default_factory=dict)
    tokens_issued: int = 0
    machines: dict[str, dict[str, Any]] = field(default_factory=dict)
    rows: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    actions: dict[str, dict[str, Any]] = field(default_factory=dict)
    files: dict[str, dict[str, Any]] = field(default_factory=dict)
    created: dict[str, float] = field(default_factory=dict)  # action id -> monotonic time
    running: dict[str, dict[int, str]] = field(default_factory=dict)  # machine -> pid -> name
    removed: set[tuple[str, str]] = field(default_factory=set)  # (machine, artefact lowered)
    live_results: dict[str, dict[str, Any]] = field(default_factory=dict)  # action id -> result
    script_name: str = "garrison.ps1"
    patched: set[tuple[str, str]] = field(default_factory=set)  # (machine, CVE) fixed
    alerts: dict[str, dict[str, Any]] = field(default_factory=dict)  # Graph alert id -> alert
    incident_id: str = "1"  # the Defender XDR incident the world's alerts belong to

    @classmethod
    def seed(
        cls,
        environment: Environment,
        events: Iterable[Mapping[str, Any]],
        alerts: Iterable[Alert] = (),
    ) -> DefenderWorld:
        """The world of a recording; its alerts were last updated when they were raised, and
        belong to one incident."""
        world = cls()
        _seed(world, environment, Telemetry.from_events(events))
        for alert in alerts:
            if not world.alerts:
                digest = hashlib.sha256(alert.uid.encode()).hexdigest()
                world.incident_id = str(int(digest[:6], 16))
            world.add_alert(alert, updated=alert.time)
        return world

    def add_alert(self, alert: Alert, *, updated: datetime | None = None) -> str:
        """Raise `alert` on its host's machine (if known); its `lastUpdateDateTime` is `updated`,
        now by default. Returns the alert id."""
        host = host_key(alert.entities.host or "")
        machine = next(
            (m for m in self.machines.values() if host_key(m["computerDnsName"]) == host), None
        )
        updated = updated or datetime.now(UTC)
        seq = len(self.alerts)
        body = graph_alert(alert, machine, self.tenant_id, self.incident_id, updated, seq)
        return self.add_raw_alert(body)

    def add_raw_alert(self, body: dict[str, Any]) -> str:
        """Store an alert as given (a test's malformed one too); it needs an `id`."""
        self.alerts[str(body["id"])] = body
        return str(body["id"])

    def expire_tokens(self) -> None:
        self.tokens = dict.fromkeys(self.tokens, 0.0)

    def isolated(self, machine_id: str) -> bool:
        latest = [
            a
            for a in self.actions.values()
            if a["machineId"] == machine_id
            and a["type"] in ("Isolate", "Unisolate")
            and a["status"] in LIVE
        ]
        return bool(latest) and latest[-1]["type"] == "Isolate"


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def run_script(world: DefenderWorld, machine_id: str, verb: str, target: str) -> tuple[str, bool]:
    """What `garrison.ps1` answers, and whether it changed the machine. Artefacts are present
    until removed and every machine is exposed to every CVE until patched, as in the in-memory
    twin (`patch`/`unpatch` take `<CVE>=<remediation>`)."""
    running = world.running.setdefault(machine_id, {})
    if verb in ("patch", "unpatch"):
        key = (machine_id, target.partition("=")[0].strip().upper())
        if (verb == "patch") == (key in world.patched):
            return "absent", False
        (world.patched.add if verb == "patch" else world.patched.discard)(key)
        return "done", True
    if verb in ("ps", "kill"):
        pid = int(target) if target.isdigit() else -1
        if verb == "ps" or pid not in running:
            return ("present" if pid in running else "absent"), False
        del running[pid]
        return "done", True
    key = (machine_id, target.strip().lower())
    if verb == "exists" or key in world.removed:
        return ("absent" if key in world.removed else "present"), False
    world.removed.add(key)
    return "done", True


def _split(account: str | None, prefix: str = "Account") -> dict[str, str | None]:
    domain, _, name = (account or "").rpartition("\\")
    return {f"{prefix}Domain": domain or None, f"{prefix}Name": name or None}


def _outbound(account: str | None) -> dict[str, str] | None:
    """A NewCredentials logon's outbound account, in `AdditionalFields` as the Security event
    names it."""
    if not account:
        return None
    domain, _, name = account.rpartition("\\")
    fields = {"TargetOutboundUserName": name}
    return fields | ({"TargetOutboundDomainName": domain} if domain else {})


def _seed(world: DefenderWorld, environment: Environment, telemetry: Telemetry) -> None:
    by_key: dict[str, dict[str, Any]] = {}

    def machine(name: str, ip: str | None = None, os: str | None = None) -> dict[str, Any]:
        found = by_key.get(host_key(name))
        if found is None:
            machine_id = hashlib.sha1(name.lower().encode(), usedforsecurity=False).hexdigest()
            platform = "Windows10" if (os or "windows").lower().startswith("win") else os
            found = {
                "id": machine_id,
                "computerDnsName": name,
                "osPlatform": platform,
                "lastIpAddress": ip,
                "healthStatus": "Active",
            }
            world.machines[machine_id] = found
            by_key[host_key(name)] = found
        return found

    for asset in environment.assets:
        found = machine(asset.hostname or asset.id, asset.ips[0] if asset.ips else None, asset.os)
        by_key.setdefault(host_key(asset.id), found)

    def row(table: str, host: str | dict[str, Any], at: datetime, **fields: Any) -> None:
        m = host if isinstance(host, dict) else machine(host)
        base = {"Timestamp": _iso(at), "DeviceId": m["id"], "DeviceName": m["computerDnsName"]}
        base.update({k: v for k, v in fields.items() if v is not None})
        world.rows.setdefault(table, []).append(base)

    def run(host: str | dict[str, Any], pid: int | None, image: str | None) -> None:
        m = host if isinstance(host, dict) else machine(host)
        if pid is not None:
            name = (image or "unknown").rsplit("\\", 1)[-1]
            world.running.setdefault(m["id"], {}).setdefault(pid, name)

    for p in telemetry.processes:
        run(p.host, p.pid, p.image)
        run(p.host, p.parent_pid, p.parent_image)
        row(
            "DeviceProcessEvents",
            p.host,
            p.time,
            ActionType="ProcessCreated",
            FileName=p.name,
            FolderPath=p.image,
            ProcessId=p.pid,
            ProcessCommandLine=p.cmd_line,
            SHA256=p.sha256,
            InitiatingProcessId=p.parent_pid,
            InitiatingProcessFolderPath=p.parent_image,
            InitiatingProcessCommandLine=p.parent_cmd_line,
            **_split(p.user),
            **{f"InitiatingProcess{k}": v for k, v in _split(p.parent_user).items()},
        )
        if p.sha256:
            sha1 = hashlib.sha1(p.sha256.encode(), usedforsecurity=False).hexdigest()
            world.files[p.sha256] = {
                "sha1": sha1,
                "sha256": p.sha256,
                "fileType": "PortableExecutable",
            }
            world.files[sha1] = world.files[p.sha256]
    for c in telemetry.connections:
        if c.host is not None:
            sides = [(machine(c.host), False)]
        else:
            sides = [
                (m, m["lastIpAddress"] == c.dst_ip)
                for m in world.machines.values()
                if m["lastIpAddress"] and m["lastIpAddress"] in (c.src_ip, c.dst_ip)
            ]
        for m, inbound in sides:
            run(m, c.pid, c.image)
            dns = c.protocol == "dns"
            action = "DnsConnectionInspected" if dns else "ConnectionSuccess"
            row(
                "DeviceNetworkEvents",
                m,
                c.time,
                ActionType="InboundConnectionAccepted" if inbound else action,
                LocalIP=c.dst_ip if inbound else c.src_ip,
                LocalPort=c.dst_port if inbound else c.src_port,
                RemoteIP=c.src_ip if inbound else c.dst_ip,
                RemotePort=c.src_port if inbound else c.dst_port,
                RemoteUrl=c.domain,
                Protocol=None if dns or not c.protocol else c.protocol.title(),
                InitiatingProcessId=c.pid,
                InitiatingProcessFolderPath=c.image,
            )
    for lg in telemetry.logons:
        row(
            "DeviceLogonEvents",
            lg.host,
            lg.time,
            ActionType="LogonSuccess" if lg.success else "LogonFailed",
            LogonType=_LOGON_NAMES.get(lg.logon_type or 0),
            RemoteIP=lg.src_ip,
            **_split(lg.user),
            **_split(lg.subject, "InitiatingProcessAccount"),
            AdditionalFields=_outbound(lg.outbound_user),
        )
    for r in telemetry.registry:
        action = _REGISTRY_ACTIONS.get(r.operation or "", "RegistryValueSet")
        key, value = r.key, None
        if action in ("RegistryValueSet", "RegistryValueDeleted"):
            key, _, value = r.key.rpartition("\\")
        for short, long in _LONG_HIVES:
            if key.upper().startswith(short):
                key = long + key[len(short) :]
        row(
            "DeviceRegistryEvents",
            r.host,
            r.time,
            ActionType=action,
            RegistryKey=key,
            RegistryValueName=value,
            RegistryValueData=r.details,
            InitiatingProcessId=writer_pid(telemetry, r),
            InitiatingProcessFolderPath=r.image,
        )
    for f in telemetry.files:
        row(
            "DeviceFileEvents",
            f.host,
            f.time,
            ActionType="FileCreated",
            FolderPath=f.path,
            FileName=f.path.rsplit("\\", 1)[-1],
            InitiatingProcessId=f.pid,
            InitiatingProcessFolderPath=f.image,
        )
    _system(row, telemetry)


def _system(row: Callable[..., None], telemetry: Telemetry) -> None:
    """`DeviceEvents` rows of the kinds Defender records (`defender_system`): no call trace on a
    process open, a service's image without its arguments, and no WMI filter or consumer on its
    own (Sysmon 19/20 are not served)."""
    for e in telemetry.system:
        action = _ACTIONS.get(e.event_id)
        if action is None:
            continue
        acting = {
            "InitiatingProcessId": e.pid,
            "InitiatingProcessFolderPath": e.image,
            **{f"InitiatingProcess{k}": v for k, v in _split(e.user).items()},
        }
        extra: dict[str, Any]
        columns: dict[str, Any] = {}
        if action.startswith("ScheduledTask"):
            extra = {"TaskName": e.name, "TaskContent": _task_xml(e.command)}
        elif action == "ServiceInstalled":
            image = _image(e.command)
            columns = {"FolderPath": image, "FileName": _file_name(image)}
            start = _START_CODES.get((e.detail or "").lower())
            extra = {"ServiceName": e.name, "ServiceStartType": start}
        elif action in ("CreateRemoteThreadApiCall", "OpenProcessApiCall"):
            target = e.target_image
            columns = {
                "ProcessId": e.target_pid,
                "FolderPath": target,
                "FileName": _file_name(target),
            }
            access = int(e.access, 16) if e.access and _HEX.fullmatch(e.access) else None
            extra = {"DesiredAccess": access}
        else:
            extra = {"Consumer": e.name, "Filter": e.detail}
        fields = {k: v for k, v in extra.items() if v is not None}
        row(
            EVENTS,
            e.host,
            e.time,
            ActionType=action,
            AdditionalFields=json.dumps(fields) if fields else None,
            **columns,
            **acting,
        )


def _task_xml(command: str | None) -> str | None:
    """A task definition as `TaskContent` carries it: the action's command in `<Exec>`."""
    if not command:
        return None
    return (
        '<?xml version="1.0" encoding="UTF-16"?><Task><Actions Context="Author"><Exec>'
        f"<Command>{html.escape(command, quote=False)}</Command></Exec></Actions></Task>"
    )


def _image(command: str | None) -> str | None:
    """The program of a service's `ImagePath`: quoted, or up to its extension."""
    text = (command or "").strip()
    if not text:
        return None
    if text.startswith('"'):
        return text[1:].split('"', 1)[0] or None
    match = _PROGRAM.match(text)
    return match.group(1) if match else text.split(" ", 1)[0]


def _file_name(path: str | None) -> str | None:
    return path.rsplit("\\", 1)[-1] if path else None
