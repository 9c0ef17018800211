"""`garrison simulate --fault CAPABILITY=SPEC`: what a spec means, how a bad one is refused (one
line naming the problem, before anything starts), and how a run's faults come on and are lifted on
each incident's emulators."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from orchestrator.models import IncidentPhase, IncidentStatusView
from simulations.emulated import IncidentFaults
from simulations.faults import Fault, FaultKind, Until, duration, parse_fault
from tools.emulators.base import EmulatorFaults, EmulatorState
from tools.vendor_spec import Capability

ROOT = Path(__file__).parents[2]
INCIDENT = ROOT / "simulations" / "incidents" / "otrf-covenant-dcsync-ws5"


@pytest.mark.parametrize(
    ("text", "knobs", "lift_after_s", "until"),
    [
        ("ticketing=down", {"down": True}, None, Until.CLOSING),
        ("ticketing=down:for=30s", {"down": True}, 30.0, None),
        ("ticketing=down:until=end", {"down": True}, None, Until.END),
        ("edr=5xx:6", {"fail_5xx": 6}, None, None),
        ("identity=429:2", {"rate_limit_429": 2, "retry_after_s": 1}, None, None),
        ("identity=429:3:retry_after=5s", {"rate_limit_429": 3, "retry_after_s": 5}, None, None),
        ("firewall=latency:20s", {"latency_ms": 20_000}, None, Until.CLOSING),
        ("firewall=latency:500ms:for=1m", {"latency_ms": 500}, 60.0, None),
        ("ticketing=reset_after_apply", {"reset_after_apply": {"*"}}, None, Until.CLOSING),
        (
            "ticketing=reset_after_apply:create_issue,add_comment",
            {"reset_after_apply": {"create_issue", "add_comment"}},
            None,
            Until.CLOSING,
        ),
        ("EDR = hang_after_apply:contain", {"hang_after_apply": {"contain"}}, None, Until.CLOSING),
    ],
)
def test_fault_specs_mean_emulator_knobs(
    text: str, knobs: dict[str, object], lift_after_s: float | None, until: Until | None
) -> None:
    fault = parse_fault(text)
    assert fault.knobs() == knobs
    assert (fault.lift_after_s, fault.until) == (lift_after_s, until)
    EmulatorFaults().update(fault.knobs())  # every knob it sets is one the emulators have


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("ticketing", "write CAPABILITY=SPEC"),
        ("ticketing=", "write CAPABILITY=SPEC"),
        ("siem=down", "unknown capability 'siem'; one of edr, firewall"),
        ("ticketing=dwn", "unknown fault 'dwn'"),
        ("edr=5xx", "5xx takes one count"),
        ("edr=5xx:0", "a count of calls of 1 or more, not '0'"),
        ("edr=5xx:six", "not 'six'"),
        ("edr=5xx:6:for=30s", "5xx takes no option 'for'"),
        ("ticketing=down:for=soon", "'soon' is not a duration"),
        ("ticketing=down:for=0s", "for= needs a duration above 0"),
        ("ticketing=down:until=lunch", "until='lunch': closing or end"),
        ("ticketing=down:for=3s:until=end", "for= or until=, not both"),
        ("ticketing=down:30s", "down takes no value"),
        ("firewall=latency", "latency takes one duration"),
        ("identity=429:2:retry_after=x", "'x' is not a duration"),
        ("ticketing=reset_after_apply:Create-Issue!", "not a list of operation names"),
    ],
)
def test_bad_fault_specs_are_refused_naming_the_problem(text: str, needle: str) -> None:
    with pytest.raises(ValueError) as refused:
        parse_fault(text)
    message = str(refused.value)
    assert needle in message
    assert message.startswith(f"--fault {text!r}: ")
    assert "\n" not in message


def test_durations() -> None:
    assert [duration(t) for t in ("30s", "500ms", "2m", "1.5")] == [30.0, 0.5, 120.0, 1.5]


def _status(phase: IncidentPhase) -> IncidentStatusView:
    return IncidentStatusView(incident_id="x", phase=phase, started_at=datetime.now(UTC))


async def test_faults_come_on_at_start_and_lift_on_time() -> None:
    states = {capability: EmulatorState() for capability in Capability}
    faults: list[Fault] = [
        parse_fault("ticketing=down"),
        parse_fault("identity=down:until=end"),
        parse_fault("firewall=latency:2s:for=0.2s"),
        parse_fault("edr=5xx:6"),
    ]
    session = IncidentFaults(faults, states)
    session.start()
    ticketing, identity = states[Capability.TICKETING].faults, states[Capability.IDENTITY].faults
    firewall, edr = states[Capability.FIREWALL].faults, states[Capability.EDR].faults
    assert (ticketing.down, identity.down, firewall.latency_ms, edr.fail_5xx) == (
        True,
        True,
        2000,
        6,
    )

    session.observe(_status(IncidentPhase.AWAITING_APPROVAL))
    assert ticketing.down is True  # not yet: the incident is still deciding
    session.observe(_status(IncidentPhase.CLOSING))
    assert ticketing.down is False  # lifted: the ticket can catch up before the run ends
    assert identity.down is True  # until=end: never within the incident's run
    assert firewall.latency_ms == 2000
    await asyncio.sleep(0.4)
    assert firewall.latency_ms == 0  # for=0.2s
    assert edr.fail_5xx == 6  # a counted fault ends when its calls are spent, not on a clock
    session.clear()
    assert identity.down is False and edr.fail_5xx == 0
    assert [f.kind for f in faults] == [
        FaultKind.DOWN,
        FaultKind.DOWN,
        FaultKind.LATENCY,
        FaultKind.FAIL_5XX,
    ]


def _simulate(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GARRISON_")}
    return subprocess.run(
        [sys.executable, "-m", "orchestrator.cli", "simulate", str(INCIDENT), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--fault", "edr=5xx:6"], "--fault needs --backends emulated"),
        (["--backends", "emulated", "--fault", "ticketing=dwn"], "unknown fault 'dwn'"),
        (["--backends", "emulated", "--fault", "edr=5xx:0"], "--fault 'edr=5xx:0': 5xx:N"),
    ],
)
def test_simulate_refuses_a_bad_fault_in_one_line(args: list[str], needle: str) -> None:
    result = _simulate(*args)
    assert result.returncode == 2
    assert needle in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr
