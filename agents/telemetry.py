"""Reading a host's telemetry around an incident through the EDR reader, and judging processes the
way an analyst does: tradecraft in the command line, an odd parent, an lsass target, outbound
connections to addresses outside the organisation, or the plain look of system maintenance.

Shared by triage (corroboration) and investigation (scoping). Adapter errors never fail an agent:
missing telemetry is recorded as a gap and the reasoning goes on with what it has.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from agents.entities import is_routable_peer
from agents.knowledge import (
    INFRASTRUCTURE_PORTS,
    MAINTENANCE_PROCESSES,
    SHELLS,
    SUSPICIOUS_PARENTS,
    cmdline_indicators,
    image_name,
    in_user_writable_dir,
    is_management_agent,
    is_system_account,
)
from tools.edr.base import EdrReader
from tools.errors import ToolError
from tools.models import in_networks
from tools.results import FileEvent, LogonEvent, NetworkConnection, ProcessEvent, RegistryEvent

WINDOW = timedelta(minutes=10)
REMOTE_LOGON_TYPES = frozenset({3, 10})


@dataclass
class HostTelemetry:
    host: str
    processes: list[ProcessEvent] = field(default_factory=list)
    connections: list[NetworkConnection] = field(default_factory=list)
    logons: list[LogonEvent] = field(default_factory=list)
    registry: list[RegistryEvent] = field(default_factory=list)
    files: list[FileEvent] = field(default_factory=list)
    gaps: list[str] = field(default_factory=list)

    def process(self, pid: int | None) -> ProcessEvent | None:
        if pid is None:
            return None
        return next((p for p in self.processes if p.pid == pid), None)

    def children(self, pid: int) -> list[ProcessEvent]:
        return [p for p in self.processes if p.parent_pid == pid and p.pid != pid]

    def connections_of(self, pid: int) -> list[NetworkConnection]:
        return [c for c in self.connections if c.pid == pid]

    def ancestors(self, pid: int, limit: int = 8) -> list[ProcessEvent]:
        """Parent, grandparent... as far as the recording shows them (pids may be reused, so
        the walk stops at a cycle)."""
        chain: list[ProcessEvent] = []
        seen = {pid}
        current = self.process(pid)
        while current is not None and len(chain) < limit:
            parent = self.process(current.parent_pid)
            if parent is None or parent.pid in seen:
                break
            seen.add(parent.pid or 0)
            chain.append(parent)
            current = parent
        return chain

    def infrastructure(self) -> set[str]:
        """Addresses this host reaches for DNS, Kerberos, LDAP or time: the estate's servers."""
        return {
            c.dst_ip for c in self.connections if c.dst_ip and c.dst_port in INFRASTRUCTURE_PORTS
        }


async def read_host(
    edr: EdrReader,
    host: str,
    start: datetime,
    end: datetime,
    *,
    logons: bool = True,
    writes: bool = False,
) -> HostTelemetry:
    telemetry = HostTelemetry(host=host)
    lo, hi = start - WINDOW, end + WINDOW
    try:
        telemetry.processes = await edr.process_events(host, lo, hi)
    except ToolError as error:
        telemetry.gaps.append(f"process events on {host} unavailable ({type(error).__name__})")
    try:
        telemetry.connections = await edr.network_connections(host, lo, hi)
    except ToolError as error:
        telemetry.gaps.append(f"connections on {host} unavailable ({type(error).__name__})")
    if logons:
        try:
            telemetry.logons = await edr.logons(host, lo, hi)
        except ToolError as error:
            telemetry.gaps.append(f"logons on {host} unavailable ({type(error).__name__})")
    if writes:
        try:
            telemetry.registry = await edr.registry_events(host, lo, hi)
        except ToolError as error:
            telemetry.gaps.append(f"registry writes on {host} unavailable ({type(error).__name__})")
        try:
            telemetry.files = await edr.file_events(host, lo, hi)
        except ToolError as error:
            telemetry.gaps.append(f"file writes on {host} unavailable ({type(error).__name__})")
    return telemetry


@dataclass(frozen=True)
class Signal:
    weight: float  # > 0 corroborates an attack, < 0 points at ordinary activity
    text: str


def external(ip: str | None, internal_networks: list[str]) -> bool:
    return bool(ip) and is_routable_peer(ip or "") and not in_networks(ip or "", internal_networks)


def judge_process(
    proc: ProcessEvent, telemetry: HostTelemetry, internal_networks: list[str]
) -> list[Signal]:
    """What one process's own record, its parent, its children and its connections say."""
    signals: list[Signal] = []
    name = image_name(proc.image or proc.name)
    where = f"{telemetry.host}:{proc.pid}"
    tradecraft = cmdline_indicators(proc.cmd_line)
    managed = is_management_agent(proc.image) or is_management_agent(proc.parent_image)
    if not tradecraft and is_system_account(proc.user) and managed:
        return [Signal(-2.5, f"{where} {name} belongs to a cloud/fleet management agent")]
    for weight, why in tradecraft:
        signals.append(Signal(weight, f"{where} {name}: {why} in its command line"))
    parent = image_name(proc.parent_image)
    if parent in SUSPICIOUS_PARENTS and name in SHELLS:
        signals.append(Signal(2.5, f"{where} {name} spawned by {parent}"))
    if proc.pid is not None:
        for child in telemetry.children(proc.pid):
            child_name = image_name(child.image or child.name)
            craft = sum(w for w, _ in cmdline_indicators(child.cmd_line))
            if child_name in SHELLS or craft >= 3.0:
                signals.append(Signal(1.5, f"{where} {name} started {child_name} ({child.pid})"))
                break
        peers = {c.dst_ip for c in telemetry.connections_of(proc.pid) if c.dst_ip}
        outside = sorted(ip for ip in peers if ip and external(ip, internal_networks))
        infrastructure = telemetry.infrastructure()
        dropped = sorted(
            c.dst_ip
            for c in telemetry.connections_of(proc.pid)
            if c.dst_ip
            and is_routable_peer(c.dst_ip)
            and c.dst_port not in INFRASTRUCTURE_PORTS
            and c.dst_ip not in infrastructure
        )
        if outside and name not in MAINTENANCE_PROCESSES:
            signals.append(Signal(2.0, f"{where} {name} connected out to {', '.join(outside[:3])}"))
        elif dropped and in_user_writable_dir(proc.image) and name not in MAINTENANCE_PROCESSES:
            signals.append(
                Signal(2.0, f"{where} {name} runs from a user-writable folder and connects to "
                       f"{', '.join(sorted(set(dropped))[:3])}")
            )  # fmt: skip
        elif peers and (name in SHELLS or parent in SUSPICIOUS_PARENTS):
            inside = sorted(ip for ip in peers if ip and is_routable_peer(ip))
            if inside:
                signals.append(Signal(1.5, f"{where} {name} connected to {', '.join(inside[:3])}"))
    if not signals and name in MAINTENANCE_PROCESSES and is_system_account(proc.user):
        signals.append(Signal(-2.0, f"{where} {name} is system maintenance run by SYSTEM"))
    return signals


def is_attacker_process(proc: ProcessEvent, telemetry: HostTelemetry, networks: list[str]) -> bool:
    return sum(s.weight for s in judge_process(proc, telemetry, networks)) >= 2.0


def remote_logons(telemetry: HostTelemetry, users: set[str]) -> list[LogonEvent]:
    """Successful network/RDP logons by the given accounts (lowercased short names)."""
    return [
        logon
        for logon in telemetry.logons
        if logon.success
        and logon.logon_type in REMOTE_LOGON_TYPES
        and logon.user
        and logon.user.strip().lower().rsplit("\\", 1)[-1] in users
        and logon.src_ip
    ]
