"""Issue 12, cause 8: an attack is not split when a process's events name no user.

The person moves from WS01 to WS02 (alerts naming them on both hosts); a later alert of the
attacker's process on WS01 names no user (a Sysmon network or file event, a process running as
SYSTEM). The corpus's rule (`grouping.group`) measures the window from the group's latest record,
so that alert joins the open group of its host. Live ingestion must do the same, also when the
alerts come in separate batches, where each grouping key used to keep its own `last_seen`: WS01's
key was last touched by the first alert, 40 minutes earlier, and the alert opened an incident of
its own.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from orchestrator.ingest.grouping import Record, group
from orchestrator.ingest.pipeline import Ingestor
from orchestrator.policy.model import IngestRules
from orchestrator.store.repository import Store
from tests.orchestrator.store.test_store_intake import alert

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def at(minutes: float, host: str, user: str | None = None) -> Record:
    return Record.of(T0 + timedelta(minutes=minutes), [host], [user])


def test_rule_a_userless_record_joins_its_hosts_group_after_a_move() -> None:
    records = [
        at(0, "WS01", "CORP\\ann"),
        at(20, "WS02", "ann@corp.com"),  # the person moves on
        at(40, "WS01"),  # the payload on WS01 again: no user named
        at(45, "WS02"),  # and on WS02
    ]
    [attack] = group(records)
    assert attack.members == [0, 1, 2, 3]
    assert attack.hosts == ["WS01", "WS02"]


async def test_live_a_userless_alert_joins_the_open_incident_of_its_host(store: Store) -> None:
    ingest = Ingestor(store, IngestRules(group_window_s=1800))
    first = await ingest.accept([alert("a1", host="WS01", user="CORP\\ann")])
    moved = await ingest.accept([alert("a2", host="WS02", user="ann@corp.com", minutes=20)])
    payload = await ingest.accept([alert("a3", host="WS01", minutes=40)])
    again = await ingest.accept([alert("a4", host="WS02", minutes=45)])
    [incident] = first.incidents
    assert moved.incidents == payload.incidents == again.incidents == [incident]
    assert [a.uid for a in await store.alerts_for(incident)] == ["a1", "a2", "a3", "a4"]
    assert len(await store.list_incidents()) == 1


async def test_live_a_userless_alert_past_the_incidents_latest_alert_opens_a_new_one(
    store: Store,
) -> None:
    ingest = Ingestor(store, IngestRules(group_window_s=1800))
    first = await ingest.accept([alert("a1", host="WS01", user="CORP\\ann")])
    await ingest.accept([alert("a2", host="WS02", user="ann@corp.com", minutes=20)])
    late = await ingest.accept([alert("a3", host="WS01", minutes=51)])  # 31 min after a2
    assert late.incidents != first.incidents
