"""The facts behind the critical-process deny: the image comes from the EDR's own process record."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from orchestrator.activities.facts import process_image
from orchestrator.policy.evaluate import DecisionOutcome, evaluate
from orchestrator.policy.model import TargetFacts, load_policy
from tools.actions import IsolateHost, KillProcess, TargetKind
from tools.results import ProcessEvent

T0 = datetime(2026, 11, 26, tzinfo=UTC)


class FakeEdr:
    def __init__(self, events: list[ProcessEvent]) -> None:
        self.events = events
        self.asked: list[str] = []

    async def process_events(self, host: str, start=None, end=None, limit=500):
        self.asked.append(host)
        return [e for e in self.events if e.host == host]


EVENTS = [
    ProcessEvent(time=T0, host="WS6", pid=704, image="C:\\Windows\\System32\\services.exe"),
    ProcessEvent(time=T0, host="WS6", pid=5120, image="C:\\Users\\Public\\beacon.exe"),
]


async def test_the_image_is_read_from_the_edr_for_process_targets_only() -> None:
    edr = FakeEdr(EVENTS)
    assert await process_image(KillProcess(target="WS6:704"), edr) == "services.exe"  # type: ignore[arg-type]
    assert await process_image(KillProcess(target="WS6:5120"), edr) == "beacon.exe"  # type: ignore[arg-type]
    assert await process_image(KillProcess(target="WS6:9999"), edr) is None  # type: ignore[arg-type]
    assert await process_image(IsolateHost(target="WS6"), edr) is None  # type: ignore[arg-type]
    assert edr.asked == ["WS6", "WS6", "WS6"]


async def test_a_reused_pid_is_read_as_the_process_running_under_it_now() -> None:
    # a payload ran as 704 before the host rebooted; the critical service now holds 704: a kill
    # of 704 hits the service, so the deny must see the service, not the first record
    events = [
        ProcessEvent(time=T0, host="WS6", pid=704, image="C:\\Users\\Public\\beacon.exe"),
        ProcessEvent(time=T0 + timedelta(hours=1), host="WS6", pid=704,
                     image="C:\\Windows\\System32\\services.exe"),
    ]  # fmt: skip
    assert await process_image(KillProcess(target="WS6:704"), FakeEdr(events)) == "services.exe"  # type: ignore[arg-type]


def test_killing_services_exe_is_denied_whatever_the_approval() -> None:
    policy = load_policy(None)
    facts = TargetFacts(
        target_kind=TargetKind.PROCESS, known_entity=True, blast_radius=1,
        process_image="services.exe",
    )  # fmt: skip
    decision = evaluate(policy, KillProcess(target="WS6:704"), facts, 0.95)
    assert decision.outcome is DecisionOutcome.DENY
    beacon = facts.model_copy(update={"process_image": "beacon.exe"})
    assert evaluate(policy, KillProcess(target="WS6:5120"), beacon, 0.95).outcome is not (
        DecisionOutcome.DENY
    )
