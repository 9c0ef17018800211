"""Reading a host's telemetry around an incident through the EDR reader, and judging processes the
way an analyst does: tradecraft in the command line, an odd parent, an lsass target, outbound
connections to addresses outside the organisation, a program started from a drop folder (or a
shell such a program started), a COM server started for a remote caller (DCOM), or the plain look
of system maintenance.

Shared by triage (corroboration) and investigation (scoping). Adapter errors never fail an agent:
the agents read through `agents.reads.RetryingEdr`, which retries transient errors within a
budget; what still fails is recorded as a gap (the incident is then degraded: every containment
needs a human) and the reasoning goes on with what it has.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from agents.entities import is_routable_peer
from agents.estate import in_drop_folder
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
from agents.processes import ProcessKey, ProcessTable
from agents.reads import Event, Fetch, read_window
from tools.edr.base import AccountEventReader, EdrReader
from tools.errors import ToolError
from tools.models import Alert, in_networks
from tools.parents import unrecorded_parents
from tools.results import (
    AccountEvent,
    FileEvent,
    LogonEvent,
    NetworkConnection,
    ProcessEvent,
    RegistryEvent,
    SystemEvent,
)

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
    # events naming accounts by role (Kerberos tickets, account changes): read on request
    accounts: list[AccountEvent] = field(default_factory=list)
    system: list[SystemEvent] = field(default_factory=list)  # tasks, services, WMI, injection
    gaps: list[str] = field(default_factory=list)
    # The process records could not be read: an alerting process without a record here is
    # unknown, not absent, and keeps no benefit of its alert (investigation/scope.py)
    processes_unread: bool = False
    _table: ProcessTable | None = field(default=None, init=False, repr=False, compare=False)
    _table_stamp: tuple[int, int] = field(default=(0, -1), init=False, repr=False, compare=False)
    _conns: dict[int | None, list[NetworkConnection]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )
    _infrastructure: frozenset[str] = field(
        default=frozenset(), init=False, repr=False, compare=False
    )
    # the connection list the two indexes above were drawn from (held) and its length then
    _conn_stamp: tuple[object, int] = field(
        default=(None, -1), init=False, repr=False, compare=False
    )
    # judge_process's answers by record (held, so its id stays its own), for the lists they
    # were drawn from: at most one per process judged, dropped with this telemetry
    _judged: dict[int, tuple[ProcessEvent, tuple[str, ...], tuple[Signal, ...]]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )
    _judged_of: tuple[object, ...] = field(default=(), init=False, repr=False, compare=False)

    @property
    def table(self) -> ProcessTable:
        """The process records as identities (`agents.processes`), rebuilt when they change."""
        stamp = (id(self.processes), len(self.processes))
        if self._table is None or self._table_stamp != stamp:
            self._table = ProcessTable(self.processes)
            self._table_stamp = stamp
        return self._table

    def judged(
        self,
        proc: ProcessEvent,
        networks: tuple[str, ...],
        judge: Callable[[ProcessEvent, HostTelemetry, list[str]], list[Signal]],
    ) -> list[Signal]:
        """`judge`'s answer for `proc`, kept while the records it reads are the same lists (the
        very objects, of the same length) on the same host."""
        drawn_from = (self.host, self.processes, self.connections, self.logons)
        sizes = tuple(len(events) for events in drawn_from[1:])
        if (
            len(self._judged_of) != 5
            or self._judged_of[4] != sizes
            or any(a is not b for a, b in zip(self._judged_of[:4], drawn_from, strict=True))
        ):
            self._judged = {}
            self._judged_of = (*drawn_from, sizes)
        kept = self._judged.get(id(proc))
        if kept is not None and kept[0] is proc and kept[1] == networks:
            return list(kept[2])
        signals = judge(proc, self, list(networks))
        self._judged[id(proc)] = (proc, networks, tuple(signals))
        return signals

    def process(
        self, pid: int | None, when: datetime | None = None, guid: str | None = None
    ) -> ProcessEvent | None:
        """The process `pid` named at `when` (the latest start at or before it), not merely the
        first one recorded with that pid: Windows reuses pids."""
        return self.table.at(pid, when, guid)

    def get(self, key: ProcessKey) -> ProcessEvent | None:
        return self.table.get(key)

    def children(self, proc: ProcessEvent) -> list[ProcessEvent]:
        return self.table.children(proc)

    def parent(self, proc: ProcessEvent) -> ProcessEvent | None:
        return self.table.parent(proc)

    def parent_path(self, proc: ProcessEvent) -> str | None:
        """The parent's full image path, from the parent's own record: every EDR records that,
        while some only name the parent's file in the child's record (Falcon's
        ParentBaseFileName), which says nothing of the folder it ran from."""
        parent = self.parent(proc)
        return parent.image if parent is not None else None

    def connections_of(self, proc: ProcessEvent) -> list[NetworkConnection]:
        """The connections `proc` made: those whose pid was `proc`'s at their time."""
        owns = self.table.owns
        return [
            c for c in self._by_pid(proc.pid) if owns(proc, c.pid, c.time, c.process_guid, c.image)
        ]

    def _by_pid(self, pid: int | None) -> list[NetworkConnection]:
        """The connections stamped with `pid`, indexed once per connection list."""
        self._index_connections()
        return self._conns.get(pid, []) if pid is not None else []

    def _index_connections(self) -> None:
        held, size = self._conn_stamp
        if held is self.connections and size == len(self.connections):
            return
        self._conns = {}
        for conn in self.connections:
            self._conns.setdefault(conn.pid, []).append(conn)
        self._infrastructure = frozenset(
            c.dst_ip for c in self.connections if c.dst_ip and c.dst_port in INFRASTRUCTURE_PORTS
        )
        self._conn_stamp = (self.connections, len(self.connections))

    def connections_of_key(self, key: ProcessKey) -> list[NetworkConnection]:
        """A process's connections; for one known only from an alert (its record unread or
        outside the window), those of its pid that no recorded process owns."""
        record = self.get(key)
        if record is not None:
            return self.connections_of(record)
        return [
            c
            for c in self._by_pid(key.pid)
            if self.table.at(c.pid, c.time, c.process_guid, c.image) is None
        ]

    def writer(
        self, pid: int | None, when: datetime, guid: str | None, image: str | None
    ) -> ProcessKey | None:
        """The recorded process that wrote an event stamped `pid` (`guid`, `image`) at `when`."""
        record = self.table.at(pid, when, guid, image)
        return ProcessKey.of(record) if record is not None else None

    def ancestors(self, proc: ProcessEvent, limit: int = 8) -> list[ProcessEvent]:
        """Parent, grandparent... as far as the recording shows them (each parent is the
        process that had the parent pid when its child started; the walk stops at a cycle)."""
        chain: list[ProcessEvent] = []
        seen = {ProcessKey.of(proc)}
        current: ProcessEvent | None = proc
        while current is not None and len(chain) < limit:
            parent = self.parent(current)
            if parent is None or ProcessKey.of(parent) in seen:
                break
            seen.add(ProcessKey.of(parent))
            chain.append(parent)
            current = parent
        return chain

    def infrastructure(self) -> set[str]:
        """Addresses this host reaches for DNS, Kerberos, LDAP or time: the estate's servers
        (found once per connection list; a fresh set each call)."""
        self._index_connections()
        return set(self._infrastructure)


async def read_host(
    edr: EdrReader,
    host: str,
    start: datetime,
    end: datetime,
    *,
    logons: bool = True,
    writes: bool = False,
    accounts: bool = False,
    registrations: bool = False,
) -> HostTelemetry:
    """A host's telemetry for the window around `start`..`end`, each kind read page by page
    (`agents.reads.read_window`); a kind that could not be read, or that the page budget cut,
    is a gap."""
    telemetry = HostTelemetry(host=host)
    lo, hi = start - WINDOW, end + WINDOW

    async def read(what: str, fetch: Fetch[Event]) -> list[Event] | None:
        try:
            window = await read_window(fetch, lo, hi)
        except ToolError as error:
            telemetry.gaps.append(f"{what} on {host} unavailable ({type(error).__name__})")
            return None
        if window.cut_at is not None:
            telemetry.gaps.append(
                f"{what} on {host} read cut at {len(window.events)} events for window "
                f"{_moment(lo)} to {_moment(hi)}: nothing after {_moment(window.cut_at)} was read"
            )
        return window.events

    def fetch_of(method: Callable[..., Awaitable[list[Event]]]) -> Fetch[Event]:
        return lambda a, b, limit: method(host, a, b, limit)

    processes = await read("process events", fetch_of(edr.process_events))
    telemetry.processes_unread = processes is None
    # a parent that started before the window, as its children's records describe it, where the
    # vendor says (Sysmon, Defender): the implant an enumeration runs under is often one
    telemetry.processes = processes or []
    if parents := unrecorded_parents(telemetry.processes):
        telemetry.processes = sorted([*telemetry.processes, *parents], key=lambda p: p.time)
    telemetry.connections = await read("connections", fetch_of(edr.network_connections)) or []
    if logons:
        telemetry.logons = await read("logons", fetch_of(edr.logons)) or []
    if writes or registrations:  # `registrations`: what was registered, not files written
        telemetry.registry = await read("registry writes", fetch_of(edr.registry_events)) or []
    if writes:
        telemetry.files = await read("file writes", fetch_of(edr.file_events)) or []
    if writes or registrations:
        telemetry.system = await read("system events", fetch_of(edr.system_events)) or []
    if accounts and isinstance(edr, AccountEventReader):
        telemetry.accounts = await read("account events", fetch_of(edr.account_events)) or []
    return telemetry


def _moment(moment: datetime) -> str:
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return aware.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Signal:
    weight: float  # > 0 corroborates an attack, < 0 points at ordinary activity
    text: str


def external(ip: str | None, internal_networks: list[str]) -> bool:
    return bool(ip) and is_routable_peer(ip or "") and not in_networks(ip or "", internal_networks)


def judge_process(
    proc: ProcessEvent, telemetry: HostTelemetry, internal_networks: list[str]
) -> list[Signal]:
    """What one process's own record, its parent, its children and its connections say.

    Triage and investigation judge the same records again and again (each process, then as
    another's parent or child): the answer is kept on the telemetry while the records it was
    drawn from (processes, connections, logons) are the same lists of the same length."""
    return telemetry.judged(proc, tuple(internal_networks), _judge)


def _judge(
    proc: ProcessEvent, telemetry: HostTelemetry, internal_networks: list[str]
) -> list[Signal]:
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
    signals += _origin_signals(proc, telemetry, where, name)
    if proc.pid is not None:
        for child in telemetry.children(proc):
            child_name = image_name(child.image or child.name)
            craft = sum(w for w, _ in cmdline_indicators(child.cmd_line))
            if child_name in SHELLS or craft >= 3.0:
                signals.append(Signal(1.5, f"{where} {name} started {child_name} ({child.pid})"))
                break
        own = telemetry.connections_of(proc)
        peers = {c.dst_ip for c in own if c.dst_ip}
        outside = sorted(ip for ip in peers if ip and external(ip, internal_networks))
        infrastructure = telemetry.infrastructure()
        dropped = sorted(
            c.dst_ip
            for c in own
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


def _origin_signals(
    proc: ProcessEvent, telemetry: HostTelemetry, where: str, name: str
) -> list[Signal]:
    """Where a process came from: a drop folder, a shell of a dropped program, a remote DCOM
    caller."""
    signals: list[Signal] = []
    parent = image_name(proc.parent_image)
    dropped_parent = in_drop_folder(telemetry.parent_path(proc))
    if name in SHELLS and parent not in SUSPICIOUS_PARENTS and dropped_parent:
        # a program someone copied to a Desktop or Downloads folder that runs shell commands
        # is how implants and droppers work; installed software does not live there
        signals.append(Signal(2.5, f"{where} {name} spawned by {parent} run from a drop folder"))
    if in_drop_folder(proc.image):
        signals.append(Signal(1.5, f"{where} {name} started from a drop folder, not installed"))
    if (logon := remote_activation(proc, telemetry)) is not None:
        # a COM server started for someone who just logged on from another machine runs what
        # that remote caller asked for (DCOM lateral movement), not what the console user did
        signals.append(
            Signal(2.0, f"{where} {name} started over DCOM for {logon.user} from {logon.src_ip}")
        )
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


# A COM server as Windows starts it for a client: `-Embedding` (out-of-process servers, DCOM) or
# Office's `/automation`.
COM_SERVER = re.compile(r"(^|\s)[-/](embedding|automation)\b", re.I)
REMOTE_ACTIVATION_WINDOW = timedelta(seconds=60)


def alert_records(alert: Alert, telemetry: HostTelemetry) -> list[ProcessEvent]:
    """The records of the process an alert names: by pid, or, when the detection left the pid
    out, the processes of that image (and account, when the alert names one) started within the
    window before the alert."""
    process = alert.entities.process
    if process is None:
        return []
    if process.pid is not None:
        record = telemetry.process(process.pid, alert.time)
        return [record] if record is not None else []
    name = image_name(process.name)
    if not name:
        return []
    user = (alert.entities.user or "").strip().lower().rsplit("\\", 1)[-1]
    return [
        p
        for p in telemetry.processes
        if image_name(p.image or p.name) == name
        and (not user or (p.user or "").strip().lower().rsplit("\\", 1)[-1] == user)
        and alert.time - WINDOW <= p.time <= alert.time
    ]


def remote_activation(
    proc: ProcessEvent, telemetry: HostTelemetry, own_ips: frozenset[str] = frozenset()
) -> LogonEvent | None:
    """The network logon that a COM server was started for: the same account logged on over the
    network from another machine within a minute before the server started (remote DCOM)."""
    if not proc.cmd_line or not COM_SERVER.search(proc.cmd_line):
        return None
    if not proc.user or is_system_account(proc.user):
        return None
    user = proc.user.strip().lower().rsplit("\\", 1)[-1]
    for logon in telemetry.logons:
        if not (logon.success and logon.logon_type == 3 and logon.user and logon.src_ip):
            continue
        if logon.user.strip().lower().rsplit("\\", 1)[-1] != user:
            continue
        if not is_routable_peer(logon.src_ip) or logon.src_ip in own_ips:
            continue
        if timedelta(0) <= proc.time - logon.time <= REMOTE_ACTIVATION_WINDOW:
            return logon
    return None
