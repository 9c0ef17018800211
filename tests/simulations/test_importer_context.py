"""The telemetry an import keeps around an incident's evidence: service and task registrations
on the alerts' hosts are kept, whatever the budget left for the other kinds."""

from __future__ import annotations

from simulations.importers.otrf.alerts import AlertHits, Key, SigmaHit
from simulations.importers.otrf.events import Event
from simulations.importers.otrf.labels import IncidentLabel
from simulations.importers.otrf.telemetry import context


def _event(second: int, source: str, number: int, host: str = "WS11", **fields: object) -> Event:
    return {
        "@timestamp": f"2024-03-01T10:00:{second:02d}.000Z",
        "host": host,
        "event_source": source,
        "EventID": number,
        **fields,
    }


def _label(max_telemetry: int) -> IncidentLabel:
    return IncidentLabel.model_validate(
        {
            "id": "test-remote-service",
            "dataset": "TEST",
            "title": "test",
            "select": {"rules": ["r"]},
            "truth": {"verdict": "malicious", "category": "lateral_movement"},
            "note": "test",
            "max_telemetry": max_telemetry,
        }
    )


def test_service_and_task_registrations_on_the_alerts_hosts_are_kept() -> None:
    evidence: dict[Key, Event] = {("f", 0): _event(30, "security", 4634)}
    candidates: dict[Key, Event] = {("f", i): _event(i, "sysmon", 3) for i in range(1, 25)}
    candidates |= {
        ("f", 40): _event(20, "security", 4697, ServiceName="updsvc"),
        ("f", 41): _event(20, "system", 7045, ServiceName="Update Helper"),
        ("f", 42): _event(21, "security", 4698, TaskName="\\Updater"),
        ("f", 43): _event(20, "security", 4697, host="WS12", ServiceName="elsewhere"),
    }
    hit = SigmaHit("f", "r", "User Logoff Event", "informational", [], "a", [0])
    kept = context(_label(12), [AlertHits(hit, [("f", 0)])], evidence, candidates, used=1)
    assert {("f", 40), ("f", 41), ("f", 42)} <= set(kept)  # first, before the shared budget
    assert ("f", 43) not in kept  # another host
    assert len(kept) <= 11  # within the budget
