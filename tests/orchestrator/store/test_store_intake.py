"""Ingestion's grouping and deduplication on a real store: a SQLite file and PostgreSQL."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from orchestrator.ingest.normalised import Normalised, Shape
from orchestrator.ingest.pipeline import Ingestor
from orchestrator.policy.model import IngestRules, StormRule
from orchestrator.store import AuditAnchor
from orchestrator.store.records import IncidentStatus
from orchestrator.store.repository import Store
from tools.models import Alert, AlertEntities, RuleRef, Severity

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def alert(
    uid: str,
    *,
    minutes: float = 0,
    host: str | None = "WS01",
    user: str | None = None,
    rule: str = "r-1",
    correlation: str | None = None,
    source: str = "edr",
) -> Normalised:
    a = Alert(
        uid=uid,
        time=T0 + timedelta(minutes=minutes),
        title=f"rule {rule} fired",
        severity=Severity.HIGH,
        product="test",
        rule=RuleRef(uid=rule, name=f"Rule {rule}"),
        entities=AlertEntities(host=host, user=user),
    )
    return Normalised(a, source, Shape.GARRISON, a.model_dump(mode="json"), correlation)


async def test_alerts_sharing_a_host_within_the_window_join_one_incident(store: Store) -> None:
    ingest = Ingestor(store, IngestRules(group_window_s=1800))
    first = await ingest.accept([alert("a1"), alert("a2", minutes=20, host="ws01.corp.local")])
    later = await ingest.accept([alert("a3", minutes=45, user="CORP\\ann")])
    apart = await ingest.accept([alert("a4", minutes=200)])
    assert len(first.incidents) == 1
    assert later.incidents == first.incidents
    assert apart.incidents != first.incidents
    stored = await store.alerts_for(first.incidents[0])
    assert [a.uid for a in stored] == ["a1", "a2", "a3"]


async def test_a_person_links_two_hosts_but_system_accounts_do_not(store: Store) -> None:
    ingest = Ingestor(store, IngestRules())
    a = await ingest.accept([alert("a1", host="WS01", user="CORP\\ann")])
    b = await ingest.accept([alert("a2", host="WS02", user="ann@corp.com", minutes=5)])
    c = await ingest.accept([alert("a3", host="WS03", user="NT AUTHORITY\\SYSTEM", minutes=5)])
    d = await ingest.accept([alert("a4", host="WS04", user="NT AUTHORITY\\SYSTEM", minutes=6)])
    assert a.incidents == b.incidents
    assert c.incidents != d.incidents


async def test_a_resent_alert_is_one_alert_with_the_same_id(store: Store) -> None:
    ingest = Ingestor(store, IngestRules())
    first = await ingest.accept([alert("a1"), alert("a1")])
    again = await ingest.accept([alert("a1")])
    assert first.duplicates == 1 and again.duplicates == 1
    assert first.alert_ids[0] == first.alert_ids[1] == again.alert_ids[0]
    assert len(await store.alerts_for(first.incidents[0])) == 1
    assert len(await store.intake.unsignalled(100)) == 1


async def test_the_senders_correlation_names_and_groups_the_incident(store: Store) -> None:
    ingest = Ingestor(store, IngestRules())
    one = await ingest.accept([alert("a1", host="WS01", correlation="INC-42")], scope="live")
    two = await ingest.accept([alert("a2", host="WS09", correlation="INC-42", minutes=300)])
    assert one.incidents == two.incidents == ["live--inc-42"]
    await store.close_incident("live--inc-42", "done", T0)
    three = await ingest.accept([alert("a3", correlation="INC-42", minutes=400)])
    assert three.incidents[0].endswith("--inc-42") and three.incidents != one.incidents


async def test_concurrent_callers_are_committed_together_and_grouped_once(store: Store) -> None:
    ingest = Ingestor(store, IngestRules())
    results = await asyncio.gather(
        *(ingest.accept([alert(f"a{i}", minutes=i % 7)]) for i in range(60))
    )
    incidents = {i for r in results for i in r.incidents}
    assert len(incidents) == 1
    assert len(await store.alerts_for(incidents.pop())) == 60


async def test_a_storm_of_one_rule_over_500_hosts_opens_few_incidents(store: Store) -> None:
    rules = IngestRules(storm=StormRule(hosts=20, window_s=300))
    ingest = Ingestor(store, rules)
    batch = [
        alert(f"s{i}", host=f"HOST{i % 500:03d}", minutes=(i / 10_000) * 4.9, rule="storm")
        for i in range(10_000)
    ]
    incidents: set[str] = set()
    for start in range(0, len(batch), 500):
        incidents.update((await ingest.accept(batch[start : start + 500])).incidents)
    assert len(incidents) <= 50
    storm = [i for i in incidents if "-storm-" in i]
    assert len(storm) == 1
    assert len(await store.alerts_for(storm[0])) > 9_000
    record = await store.get_incident(storm[0])
    assert record is not None and record.status is IncidentStatus.OPEN
    assert record.title.startswith("Alert storm: Rule storm")


async def test_sqlites_log_stays_bounded_under_continuous_ingestion(
    tmp_path: Path, anchor: AuditAnchor
) -> None:
    """Ingestion commits without pause: the write-ahead log must still be checkpointed and reused.
    A checkpoint run beside the writer (not in its commits) never found the log fully copied at
    the start of a write, so the log was never rewound: 150 MB after 6,000 alerts."""
    store = await Store.open(f"sqlite:///{tmp_path / 'garrison.db'}", anchor=anchor)
    try:
        ingest = Ingestor(store, IngestRules())
        pad = "x" * 2_000  # about the size of a real alert's original record
        for start in range(0, 3_000, 10):
            batch = [
                alert(f"w{n}", minutes=n / 10, host=f"WS{n % 200:03d}", rule=f"r-{n % 7}")
                for n in range(start, start + 10)
            ]
            await ingest.accept(
                [replace(item, original={**item.original, "pad": pad}) for item in batch]
            )
        log = tmp_path / "garrison.db-wal"
        assert log.stat().st_size < 16 * 2**20, f"{log.stat().st_size:,} bytes of log"
    finally:
        await store.close()
