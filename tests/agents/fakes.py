"""Tiny in-memory readers for agent and playbook tests (the project's twins may replace them)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from tools.edr.base import EdrReader
from tools.errors import PermanentToolError, TransientToolError
from tools.models import (
    Alert,
    AlertEntities,
    Asset,
    AttackRef,
    Environment,
    FileRef,
    Identity,
    Indicator,
    ProcessRef,
    RuleRef,
    Severity,
)
from tools.results import (
    AccountInfo,
    FileEvent,
    HostInfo,
    LogonEvent,
    NetworkConnection,
    ProcessEvent,
    RegistryEvent,
    Reputation,
    ReputationVerdict,
    SystemEvent,
)
from tools.toolsets import ReadTools

T0 = datetime(2023, 8, 18, 8, 56, 50, tzinfo=UTC)


def _in(time: datetime, start: datetime | None, end: datetime | None) -> bool:
    return (start is None or time >= start) and (end is None or time <= end)


@dataclass
class FakeEdr:
    processes: list[ProcessEvent] = field(default_factory=list)
    connections: list[NetworkConnection] = field(default_factory=list)
    logon_events: list[LogonEvent] = field(default_factory=list)
    registry: list[RegistryEvent] = field(default_factory=list)
    files: list[FileEvent] = field(default_factory=list)
    system: list[SystemEvent] = field(default_factory=list)

    async def find_host(self, host: str) -> HostInfo | None:
        return HostInfo(id=host)

    async def process_events(self, host, start=None, end=None, limit=500):
        return [p for p in self.processes if p.host == host and _in(p.time, start, end)][:limit]

    async def network_connections(self, host, start=None, end=None, limit=500):
        return [c for c in self.connections if c.host == host and _in(c.time, start, end)][:limit]

    async def logons(self, host, start=None, end=None, limit=500):
        return [x for x in self.logon_events if x.host == host and _in(x.time, start, end)][:limit]

    async def registry_events(self, host, start=None, end=None, limit=500):
        return [r for r in self.registry if r.host == host and _in(r.time, start, end)][:limit]

    async def file_events(self, host, start=None, end=None, limit=500):
        return [f for f in self.files if f.host == host and _in(f.time, start, end)][:limit]

    async def system_events(self, host, start=None, end=None, limit=500):
        return [s for s in self.system if s.host == host and _in(s.time, start, end)][:limit]


@dataclass
class FakeInventory:
    env: Environment

    async def environment(self) -> Environment:
        return self.env

    async def get_asset(self, asset_id: str) -> Asset | None:
        return next((a for a in self.env.assets if a.id.lower() == asset_id.lower()), None)

    async def get_identity(self, identity_id: str) -> Identity | None:
        key = identity_id.lower().rsplit("\\", 1)[-1]
        return next(
            (i for i in self.env.identities if i.id.lower().rsplit("\\", 1)[-1] == key), None
        )


class FakeIdentity:
    async def get_account(self, identity: str) -> AccountInfo | None:
        return AccountInfo(id=identity)


class FakeIntel:
    async def reputation(self, indicator: Indicator) -> Reputation:
        return Reputation(indicator=indicator.value, verdict=ReputationVerdict.UNKNOWN)


def lab_environment() -> Environment:
    return Environment(
        assets=[
            Asset(id="PRD01", hostname="PRD01.pandalab.com", kind="workstation",
                  criticality="medium", ips=["172.18.39.6"], owner="pandalab\\pedro.gustavo"),
            Asset(id="DC01", hostname="DC01.pandalab.com", kind="domain_controller",
                  criticality="critical", ips=["172.18.39.5"]),
            Asset(id="WS02", hostname="WS02.pandalab.com", kind="workstation",
                  criticality="low", ips=["172.18.39.7"]),
        ],
        identities=[
            Identity(id="pandalab\\pedro.gustavo", kind="user"),
            Identity(id="pandalab\\administrator", kind="admin", privileged=True),
        ],
        internal_networks=["172.18.0.0/16"],
        protected=["DC01"],
    )  # fmt: skip


def read_tools(edr: FakeEdr | FlakyEdr | None = None, env: Environment | None = None) -> ReadTools:
    return ReadTools(
        edr=edr or FakeEdr(),
        identity=FakeIdentity(),
        intel=FakeIntel(),
        inventory=FakeInventory(env or lab_environment()),
    )


def alert(
    uid: str,
    title: str,
    severity: Severity,
    techniques: list[tuple[str, str]],
    *,
    host: str = "PRD01.pandalab.com",
    user: str | None = None,
    pid: int | None = None,
    name: str | None = None,
    cmd: str | None = None,
    rule_uid: str | None = None,
    src_ip: str | None = None,
    dst_ip: str | None = None,
    domain: str | None = None,
    file_path: str | None = None,
    time: datetime = T0,
) -> Alert:
    return Alert(
        uid=uid,
        time=time,
        title=title,
        severity=severity,
        product="sigma",
        rule=RuleRef(uid=rule_uid or f"rule-{uid}", name=title),
        attacks=[AttackRef(technique=t, tactic=tac) for t, tac in techniques],
        entities=AlertEntities(
            host=host,
            user=user,
            process=ProcessRef(pid=pid, name=name, cmd_line=cmd) if pid or cmd else None,
            src_ip=src_ip,
            dst_ip=dst_ip,
            domain=domain,
            file=FileRef(path=file_path) if file_path else None,
        ),
    )


@dataclass
class FlakyEdr:
    """An EDR reader that fails its next `failures` reads, then answers as `inner`: a vendor
    answering 503 (or 429 with `retry_after_s`) for a while. `calls` counts every read tried."""

    inner: EdrReader
    failures: int = 0
    retry_after_s: float | None = None
    permanent: bool = False
    calls: int = 0

    def _fail(self) -> None:
        self.calls += 1
        if self.failures > 0:
            self.failures -= 1
            if self.permanent:
                raise PermanentToolError("emulated 403")
            raise TransientToolError("emulated 503", retry_after_s=self.retry_after_s)

    async def find_host(self, host: str) -> HostInfo | None:
        self._fail()
        return await self.inner.find_host(host)

    async def process_events(self, host, start=None, end=None, limit=500):
        self._fail()
        return await self.inner.process_events(host, start, end, limit)

    async def network_connections(self, host, start=None, end=None, limit=500):
        self._fail()
        return await self.inner.network_connections(host, start, end, limit)

    async def logons(self, host, start=None, end=None, limit=500):
        self._fail()
        return await self.inner.logons(host, start, end, limit)

    async def registry_events(self, host, start=None, end=None, limit=500):
        self._fail()
        return await self.inner.registry_events(host, start, end, limit)

    async def file_events(self, host, start=None, end=None, limit=500):
        self._fail()
        return await self.inner.file_events(host, start, end, limit)

    async def system_events(self, host, start=None, end=None, limit=500):
        self._fail()
        return await self.inner.system_events(host, start, end, limit)
