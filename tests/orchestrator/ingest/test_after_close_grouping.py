"""Late alerts at ingestion, on the real store (a SQLite file and PostgreSQL): an alert of a
closed incident's group is stored as a member of THAT incident within the policy's window, never
as a second incident; past the window it opens a new one; a storm incident keeps its storm after
its first pass closed, and a storm that starts again after a pause is a new storm."""

from __future__ import annotations

from datetime import timedelta

from orchestrator.ingest.pipeline import Ingestor
from orchestrator.policy.model import AfterClose, IngestRules, StormRule
from orchestrator.store.records import IncidentStatus
from orchestrator.store.repository import Store
from tests.orchestrator.store.test_store_intake import T0, alert

CLOSE_WINDOW_S = 600


def rules() -> IngestRules:
    return IngestRules(
        group_window_s=1800,
        storm=StormRule(hosts=5, window_s=300),
        after_close=AfterClose(window_s=CLOSE_WINDOW_S),
    )


async def test_a_late_alert_within_the_window_is_stored_in_the_closed_incident(
    store: Store,
) -> None:
    ingest = Ingestor(store, rules())
    [incident] = (await ingest.accept([alert("a1", host="WS01", user="CORP\\ann")])).incidents
    await store.close_incident(incident, "done", T0 + timedelta(minutes=1))
    # the same host, then a new host that shares the person: both are the closed incident's
    same = await ingest.accept([alert("a2", host="ws01.corp.local", minutes=5)])
    person = await ingest.accept([alert("a3", host="WS02", user="ann@corp.com", minutes=6)])
    # and that new host now points to it too
    host = await ingest.accept([alert("a4", host="WS02", minutes=7)])
    assert same.incidents == person.incidents == host.incidents == [incident]
    assert [a.uid for a in await store.alerts_for(incident)] == ["a1", "a2", "a3", "a4"]
    assert len(await store.list_incidents()) == 1
    record = await store.get_incident(incident)
    assert record is not None and record.status is IncidentStatus.CLOSED
    # stored and waiting for the dispatcher, which decides what a closed incident does with them
    waiting = {row.alert_uid: row.incident_id for row in await store.intake.unsignalled(10)}
    assert waiting == {"a1": incident, "a2": incident, "a3": incident, "a4": incident}


async def test_a_late_alert_past_the_window_opens_a_new_incident(store: Store) -> None:
    ingest = Ingestor(store, rules())
    [incident] = (await ingest.accept([alert("a1", host="WS01")])).incidents
    await store.close_incident(incident, "done", T0)
    # within the grouping window of its latest alert, but past the window after its close
    past = await ingest.accept([alert("a2", host="WS01", minutes=CLOSE_WINDOW_S / 60 + 1)])
    assert past.incidents != [incident]
    # the new incident now owns the host: a later alert joins it, not the closed one
    later = await ingest.accept([alert("a3", host="WS01", minutes=CLOSE_WINDOW_S / 60 + 2)])
    assert later.incidents == past.incidents


async def test_a_senders_group_after_close_joins_its_incident_within_the_window(
    store: Store,
) -> None:
    ingest = Ingestor(store, rules())
    first = await ingest.accept([alert("a1", correlation="INC-7")], scope="live")
    assert first.incidents == ["live--inc-7"]
    await store.close_incident("live--inc-7", "done", T0 + timedelta(minutes=1))
    resent = await ingest.accept([alert("a2", host="WS09", correlation="INC-7", minutes=3)])
    assert resent.incidents == ["live--inc-7"]
    late = await ingest.accept([alert("a3", correlation="INC-7", minutes=60)])
    assert late.incidents != ["live--inc-7"] and late.incidents[0].endswith("--inc-7")


def _storm(prefix: str, hosts: range, minutes: float) -> list:
    return [
        alert(f"{prefix}{h}", host=f"HOST{h:03d}", rule="noisy", minutes=minutes + h / 600)
        for h in hosts
    ]


async def test_a_storm_incident_keeps_its_storm_after_its_first_pass_closed(
    store: Store,
) -> None:
    ingest = Ingestor(store, rules())
    first = await ingest.accept(_storm("s", range(0, 10), 0))
    [storm] = [i for i in first.incidents if "-storm-" in i]
    await store.close_incident(storm, "first pass done", T0 + timedelta(minutes=1))
    # the storm goes on, 20 more hosts: every alert joins the closed storm incident
    more = await ingest.accept(_storm("t", range(10, 30), 2))
    assert more.incidents == [storm]
    assert len(await store.alerts_for(storm)) == 5 + 20  # the 6th host on, then all 20 more
    # after a pause longer than the storm window, the rule storming again is a new storm
    again = await ingest.accept(_storm("u", range(30, 40), 2 + 300 / 60 + 10))
    [second] = [i for i in again.incidents if "-storm-" in i]
    assert second != storm
