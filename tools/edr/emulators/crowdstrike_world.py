"""The state of the Falcon emulator and how a recorded incident seeds it: one device per asset
(and per sensor that sent telemetry), the recording's events re-shaped as Falcon sensor events,
the processes they show running, a quarantine record (released) per executable seen, and the
recording's alerts as Falcon Alerts API v2 entities (`add_alert` adds more at runtime).

Network sensors (Zeek) record no host: their connections are shown on the device whose address
they involve, outbound or inbound, as Falcon's own sensor would have seen them.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tools.edr.crowdstrike_events import REG_OPERATIONS
from tools.edr.crowdstrike_system import (
    INJECTED_THREAD,
    SERVICE_CREATED,
    TASK_MODIFIED,
    TASK_REGISTERED,
    WMI_BINDING,
)
from tools.edr.emulators.alert_shapes import falcon_alert
from tools.models import Alert, Environment
from tools.names import host_key
from tools.telemetry import Telemetry, writer_pid

_OPERATION_CODES = {name: code for code, name in REG_OPERATIONS.items()}
_PROTOCOL_CODES = {"icmp": 1, "tcp": 6, "udp": 17, "icmpv6": 58}
_START_CODES = {
    "boot start": 0,
    "system start": 1,
    "auto start": 2,
    "demand start": 3,
    "disabled": 4,
}
_HIVES = (("HKLM\\", "\\REGISTRY\\MACHINE\\"), ("HKU\\", "\\REGISTRY\\USER\\"))


@dataclass
class FalconDevice:
    device_id: str
    hostname: str
    machine_domain: str | None = None
    local_ip: str | None = None
    platform_name: str = "Windows"
    status: str = "normal"
    previous_status: str = "normal"
    changed_at: float = 0.0

    def shown(self, lag_s: float) -> dict[str, Any]:
        """The entity as the Hosts API shows it; a status change shows up `lag_s` late."""
        stale = lag_s and time.monotonic() - self.changed_at < lag_s
        return {
            "device_id": self.device_id,
            "cid": "0" * 32,
            "hostname": self.hostname,
            "machine_domain": self.machine_domain,
            "local_ip": self.local_ip,
            "platform_name": self.platform_name,
            "status": self.previous_status if stale else self.status,
        }


@dataclass
class FalconWorld:
    client_id: str = "garrison-emulator"
    client_secret: str = "emulator-secret"  # noqa: S105  (the emulator's own credential)
    token_ttl_s: int = 1799
    tokens: dict[str, float] = field(default_factory=dict)
    tokens_issued: int = 0
    devices: dict[str, FalconDevice] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)
    running: dict[str, dict[int, str]] = field(default_factory=dict)
    quarantine: dict[str, dict[str, Any]] = field(default_factory=dict)
    removed: set[tuple[str, str]] = field(default_factory=set)
    # (device id, CVE) closed by the patch script: every other CVE is open on every device
    patched: set[tuple[str, str]] = field(default_factory=set)
    patch_script: str = "garrison-patch"
    sessions: dict[str, str] = field(default_factory=dict)
    commands: dict[str, dict[str, Any]] = field(default_factory=dict)
    jobs: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    cid: str = "0" * 32
    alerts: dict[str, dict[str, Any]] = field(default_factory=dict)  # composite id -> entity

    @classmethod
    def seed(
        cls,
        environment: Environment,
        events: Iterable[Mapping[str, Any]],
        alerts: Iterable[Alert] = (),
    ) -> FalconWorld:
        """The world of a recording; its alerts were last updated when they were raised."""
        world = cls()
        _Seeder(world, environment).load(Telemetry.from_events(events))
        for alert in alerts:
            world.add_alert(alert, updated=alert.time)
        return world

    def add_alert(self, alert: Alert, *, updated: datetime | None = None) -> str:
        """Raise `alert` on its host's device (added if unknown); its `updated_timestamp` is
        `updated`, now by default. Returns the composite id."""
        host = alert.entities.host or "unknown"
        device = next(
            (d for d in self.devices.values() if host_key(d.hostname) == host_key(host)), None
        )
        if device is None:
            label, _, domain = host.partition(".")
            device_id = hashlib.sha256(label.lower().encode()).hexdigest()[:32]
            device = self.devices.setdefault(
                device_id, FalconDevice(device_id, label, domain or None, None)
            )
        entity = falcon_alert(
            alert, device.shown(0.0), self.cid, updated or datetime.now(UTC), len(self.alerts)
        )
        return self.add_raw_alert(entity)

    def add_raw_alert(self, entity: dict[str, Any]) -> str:
        """Store an entity as given (a test's malformed one too); it needs a `composite_id`."""
        self.alerts[str(entity["composite_id"])] = entity
        return str(entity["composite_id"])

    def expire_tokens(self) -> None:
        """Every issued token expires now (the next API call answers 401)."""
        self.tokens = dict.fromkeys(self.tokens, 0.0)


class _Seeder:
    def __init__(self, world: FalconWorld, environment: Environment) -> None:
        self.world = world
        self.by_key: dict[str, FalconDevice] = {}
        for asset in environment.assets:
            label, _, domain = (asset.hostname or asset.id).partition(".")
            os_name = (asset.os or "windows").lower()
            device = self._add(label, domain or None, asset.ips[0] if asset.ips else None)
            device.platform_name = "Windows" if os_name.startswith("win") else os_name.title()
            self.by_key.setdefault(host_key(asset.id), device)

    def _add(self, label: str, domain: str | None, ip: str | None) -> FalconDevice:
        device = self.by_key.get(host_key(label))
        if device is None:
            device_id = hashlib.sha256(label.lower().encode()).hexdigest()[:32]
            device = FalconDevice(device_id, label, domain, ip)
            self.world.devices[device_id] = device
            self.by_key[host_key(label)] = device
        return device

    def device(self, host: str) -> FalconDevice:
        found = self.by_key.get(host_key(host))
        if found is None:
            label, _, domain = host.partition(".")
            found = self._add(label, domain or None, None)
        return found

    def row(self, device: FalconDevice, at: datetime, name: str, **fields: Any) -> None:
        row = {
            "@timestamp": int(at.timestamp() * 1000),
            "#event_simpleName": name,
            "aid": device.device_id,
            "ComputerName": device.hostname,
        }
        row.update({k: v for k, v in fields.items() if v is not None})
        self.world.events.append(row)

    def running(self, device: FalconDevice, pid: int | None, image: str | None) -> None:
        if pid is not None:
            name = (image or "unknown").replace("/", "\\").rsplit("\\", 1)[-1]
            self.world.running.setdefault(device.device_id, {}).setdefault(pid, name)

    def load(self, telemetry: Telemetry) -> None:
        for p in telemetry.processes:
            device = self.device(p.host)
            parent = (p.parent_image or "").replace("/", "\\").rsplit("\\", 1)[-1] or None
            self.row(
                device,
                p.time,
                "ProcessRollup2",
                RawProcessId=p.pid,
                TargetProcessId=p.pid,
                ImageFileName=p.image,
                CommandLine=p.cmd_line,
                ParentProcessId=p.parent_pid,
                ParentBaseFileName=parent,
                UserName=p.user,
                SHA256HashData=p.sha256,
            )
            self.running(device, p.pid, p.image)
            self.running(device, p.parent_pid, p.parent_image)
            if p.sha256:
                record_id = f"{device.device_id}_{p.sha256}"
                self.world.quarantine[record_id] = {
                    "id": record_id,
                    "aid": device.device_id,
                    "cid": "0" * 32,
                    "sha256": p.sha256,
                    "state": "released",
                    "hostname": device.hostname,
                    "username": p.user,
                    "paths": [{"path": p.image, "filename": p.name, "state": "released"}],
                }
        self._connections(telemetry)
        self._logons(telemetry)
        self._registry(telemetry)
        self._files(telemetry)
        self._system(telemetry)

    def _connections(self, telemetry: Telemetry) -> None:
        for c in telemetry.connections:
            if c.host is not None:
                sides = [(self.device(c.host), False)]
            else:
                sides = [
                    (d, d.local_ip == c.dst_ip)
                    for d in self.world.devices.values()
                    if d.local_ip and d.local_ip in (c.src_ip, c.dst_ip)
                ]
            for device, inbound in sides:
                common = {"ContextProcessId": c.pid, "ContextImageFileName": c.image}
                self.running(device, c.pid, c.image)
                if c.protocol == "dns":
                    self.row(device, c.time, "DnsRequest", DomainName=c.domain, **common)
                    continue
                v6 = ":" in (c.src_ip or "") + (c.dst_ip or "")
                kind = ("NetworkReceiveAcceptIP" if inbound else "NetworkConnectIP") + (
                    "6" if v6 else "4"
                )
                suffix = "IP6" if v6 else "IP4"
                local, remote = (c.dst_ip, c.src_ip) if inbound else (c.src_ip, c.dst_ip)
                ports = (c.dst_port, c.src_port) if inbound else (c.src_port, c.dst_port)
                self.row(
                    device,
                    c.time,
                    kind,
                    **{f"LocalAddress{suffix}": local, f"RemoteAddress{suffix}": remote},
                    LocalPort=ports[0],
                    RemotePort=ports[1],
                    Protocol=_PROTOCOL_CODES.get((c.protocol or "").lower()),
                    **common,
                )

    def _logons(self, telemetry: Telemetry) -> None:
        for lg in telemetry.logons:
            domain, _, user = (lg.user or "").rpartition("\\")
            self.row(
                self.device(lg.host),
                lg.time,
                "UserLogon" if lg.success else "UserLogonFailed2",
                UserName=user or None,
                LogonDomain=domain or None,
                LogonType=lg.logon_type,
                RemoteAddressIP4=lg.src_ip if lg.src_ip and ":" not in lg.src_ip else None,
                **_logon_parties(lg.subject, lg.outbound_user),
            )

    def _registry(self, telemetry: Telemetry) -> None:
        for r in telemetry.registry:
            code = _OPERATION_CODES.get(r.operation or "", 1)
            key, value = r.key, None
            if code in (1, 2):
                key, _, value = r.key.rpartition("\\")
            for short, native in _HIVES:
                if key.upper().startswith(short):
                    key = native + key[len(short) :]
            self.row(
                self.device(r.host),
                r.time,
                "RegGenericValueUpdate" if code in (1, 2) else "AsepKeyUpdate",
                RegObjectName=key,
                RegValueName=value,
                RegStringValue=r.details,
                RegOperationType=code,
                ContextProcessId=writer_pid(telemetry, r),
                ContextImageFileName=r.image,
                UserName=r.user,
            )

    def _files(self, telemetry: Telemetry) -> None:
        for f in telemetry.files:
            extension = f.path.rsplit(".", 1)[-1].lower() if "." in f.path else ""
            kind = {
                "lnk": "LnkFileWritten",
                "exe": "PeFileWritten",
                "dll": "PeFileWritten",
                "ps1": "NewScriptWritten",
                "bat": "NewScriptWritten",
                "vbs": "NewScriptWritten",
            }.get(extension, "GenericFileWritten")
            self.row(
                self.device(f.host),
                f.time,
                kind,
                TargetFileName=f.path,
                ContextProcessId=f.pid,
                ContextImageFileName=f.image,
                UserName=f.user,
            )

    def _system(self, telemetry: Telemetry) -> None:
        """Only the kinds Falcon has an event for (`crowdstrike_system`): a recorded handle open
        (Sysmon 10), WMI filter or consumer (Sysmon 19/20) has no Falcon shape and is not served."""
        for e in telemetry.system:
            device = self.device(e.host)
            if e.event_id in (4698, 4702):
                self.row(
                    device,
                    e.time,
                    TASK_REGISTERED if e.event_id == 4698 else TASK_MODIFIED,
                    TaskName=e.name,
                    TaskExecCommand=e.command,
                    TaskAuthor=e.user,
                    RpcClientProcessId=e.pid,
                )
            elif e.event_id in (4697, 7045):
                self.row(
                    device,
                    e.time,
                    SERVICE_CREATED,
                    ServiceDisplayName=e.name,
                    ServiceImagePath=e.command,
                    ServiceStart=_START_CODES.get((e.detail or "").lower()),
                    UserName=e.user,
                    RpcClientProcessId=e.pid,
                )
            elif e.event_id == 8:
                self.row(
                    device,
                    e.time,
                    INJECTED_THREAD,
                    ContextProcessId=e.pid,
                    ContextImageFileName=e.image,
                    TargetProcessId=e.target_pid,
                    UserName=e.user,
                )
            elif e.event_id == 21:
                self.row(
                    device,
                    e.time,
                    WMI_BINDING,
                    ConsumerName=e.name,
                    FilterName=e.detail,
                    UserName=e.user,
                )


def _logon_parties(subject: str | None, outbound: str | None) -> dict[str, str | None]:
    """Who asked for a logon and the account a NewCredentials session presents, under the
    Security event's names (`Subject*`, `TargetOutbound*`)."""
    subject_domain, _, subject_name = (subject or "").rpartition("\\")
    out_domain, _, out_name = (outbound or "").rpartition("\\")
    return {
        "SubjectUserName": subject_name or None,
        "SubjectDomainName": subject_domain or None,
        "TargetOutboundUserName": out_name or None,
        "TargetOutboundDomainName": out_domain or None,
    }
