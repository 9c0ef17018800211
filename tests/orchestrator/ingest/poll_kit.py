"""What the poll tests share: an emulated vendor with alerts added at chosen instants, a sink that
records what it accepted, and a dead-letter box."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from orchestrator.ingest.normalised import Normalised
from orchestrator.ingest.pollers.base import AlertFeed
from orchestrator.ingest.pollers.falcon import FalconAlertFeed
from orchestrator.ingest.pollers.graph import GraphAlertFeed
from orchestrator.ingest.pollers.models import PollInput, PollSource
from orchestrator.ingest.sink import Accepted, Backpressure
from orchestrator.store import poll_cursors
from orchestrator.store.repository import Store
from tests.tools.contracts.world import environment, events
from tools.edr.emulators.crowdstrike import build_app as build_falcon_app
from tools.edr.emulators.crowdstrike_world import FalconWorld
from tools.edr.emulators.defender import build_app as build_defender_app
from tools.edr.emulators.defender_world import DefenderWorld
from tools.edr.vendors import crowdstrike_emulator_settings
from tools.emulators.base import EmulatorState, FaultMiddleware
from tools.emulators.serve import serve
from tools.identity.entra import EntraSettings
from tools.models import Alert, AlertEntities, AttackRef, ProcessRef, RuleRef, Severity

T0 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)


def make_alert(n: int, host: str = "PRD01") -> Alert:
    return Alert(
        uid=f"test:{n}",
        time=T0 + timedelta(seconds=n),
        title=f"Suspicious thing {n}",
        severity=Severity.HIGH,
        product="test",
        rule=RuleRef(uid=f"rule-{n % 3}", name=f"Rule {n % 3}"),
        attacks=[AttackRef(technique="T1059.001", tactic="execution")],
        entities=AlertEntities(
            host=host,
            user="PANDALAB\\pedro",
            process=ProcessRef(pid=1000 + n, name="powershell.exe", cmd_line=f"powershell -c {n}"),
        ),
    )


def request(source: PollSource, **limits: Any) -> PollInput:
    return PollInput(source=source, initial_lookback_s=0, settle_s=0, **limits)


@dataclass
class RecordingSink:
    """An `AlertSink` that keeps what it accepted (by vendor uid), refusing once if told to."""

    accepted: list[Normalised] = field(default_factory=list)
    backpressure_once: bool = False
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def accept(self, items: Sequence[Normalised], *, scope: str | None = None) -> Accepted:
        if self.backpressure_once:
            self.backpressure_once = False
            raise Backpressure(1, "store behind")
        self.accepted.extend(items)
        self.arrived.set()
        return Accepted(alert_ids=[i.alert.uid for i in items])

    @property
    def uids(self) -> list[str]:
        return [i.alert.uid for i in self.accepted]


@dataclass
class DeadLetters:
    letters: list[tuple[str, Mapping[str, Any], str]] = field(default_factory=list)

    async def __call__(self, source: str, original: Mapping[str, Any], reason: str) -> None:
        self.letters.append((source, original, reason))


@dataclass
class Vendor:
    source: PollSource
    world: FalconWorld | DefenderWorld
    state: EmulatorState
    feed: AlertFeed

    def add(self, alert: Alert, updated: datetime) -> str:
        return self.world.add_alert(alert, updated=updated)

    def add_raw(self, body: dict[str, Any]) -> str:
        return self.world.add_raw_alert(body)


@asynccontextmanager
async def vendor(source: PollSource) -> AsyncIterator[Vendor]:
    state = EmulatorState()
    if source is PollSource.FALCON:
        falcon = FalconWorld.seed(environment(), events())
        async with serve(FaultMiddleware(build_falcon_app(falcon, state), state)) as url:
            feed = FalconAlertFeed(crowdstrike_emulator_settings(url))
            try:
                yield Vendor(source, falcon, state, feed)
            finally:
                await feed.aclose()
        return
    defender = DefenderWorld.seed(environment(), events())
    async with serve(FaultMiddleware(build_defender_app(defender, state), state)) as url:
        settings = EntraSettings(
            base_url=url,
            token_url=f"{url}/{defender.tenant_id}/oauth2/v2.0/token",
            tenant_id=defender.tenant_id,
            client_id=defender.client_id,
            client_secret=SecretStr(defender.client_secret),
            rate_per_minute=60_000,
        )
        graph = GraphAlertFeed(settings)
        try:
            yield Vendor(source, defender, state, graph)
        finally:
            await graph.aclose()


async def open_store(tmp_path: Path) -> Store:
    store = await Store.open(f"sqlite:///{tmp_path / 'garrison.db'}")
    await poll_cursors.create_table(store)
    return store


async def wait_for_uids(sink: RecordingSink, count: int, timeout_s: float = 30) -> None:
    async with asyncio.timeout(timeout_s):
        while len(sink.uids) < count:
            sink.arrived.clear()
            await sink.arrived.wait()
