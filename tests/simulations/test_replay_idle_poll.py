"""The simulation driver's idle pace (`simulations.replay._IdlePoll`): a status query every
POLL_S after any change, backing off to IDLE_MAX_S while nothing changes; always POLL_S for a
status observer (`--fault` lifts faults on the statuses it sees)."""

from __future__ import annotations

from datetime import UTC, datetime

from orchestrator.models import IncidentPhase, IncidentStatusView
from simulations.replay import IDLE_MAX_S, POLL_S, _IdlePoll  # pyright: ignore[reportPrivateUsage]

T0 = datetime(2031, 3, 4, 5, 6, 7, tzinfo=UTC)


def status(phase: IncidentPhase) -> IncidentStatusView:
    return IncidentStatusView(incident_id="inc-1", phase=phase, started_at=T0)


def test_an_unchanged_status_is_asked_less_often_and_a_change_resets_the_pace() -> None:
    idle = _IdlePoll(fixed=False)
    waits = [idle.next(status(IncidentPhase.TRIAGE)) for _ in range(6)]
    assert waits[0] == POLL_S
    assert waits == sorted(waits) and waits[-1] == IDLE_MAX_S
    assert idle.next(status(IncidentPhase.RESPONDING)) == POLL_S


def test_a_status_observer_sees_every_status_at_the_poll_pace() -> None:
    idle = _IdlePoll(fixed=True)
    assert {idle.next(status(IncidentPhase.TRIAGE)) for _ in range(6)} == {POLL_S}
