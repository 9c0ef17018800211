"""Reads that tell the truth about their limits (`agents/reads.py`): a long incident is read page
by page past the vendor's 500-event limit, and a read the page budget still cuts is an evidence
gap, never a silent end. Hand-written incidents: hundreds of background process starts before
the attacker's."""

from __future__ import annotations

from datetime import datetime, timedelta

from agents.deps import AgentDeps
from agents.investigation.graph import run_investigation
from agents.models import InvestigationInput, InvestigationReport
from agents.reads import MAX_PAGES, PAGE, read_window
from agents.triage.graph import run_triage
from tests.agents.fakes import T0, FakeEdr, alert, read_tools
from tests.agents.scenarios import triage_input
from tools.edr.memory import InMemoryEdr
from tools.models import Alert, Severity
from tools.results import NetworkConnection, ProcessEvent
from tools.telemetry import Telemetry

C2 = "203.0.113.77"
BEACON_SHA = "c" * 64
ENCODED = "powershell.exe -nop -w hidden -enc SQBFAFgAIAAoAE4AZQB3AC0ATwBiAGoAZQBjAHQAKQA="


def _background(count: int) -> list[ProcessEvent]:
    """`count` starts of an ordinary console host in the minutes before the attack."""
    step = timedelta(minutes=9) / count
    return [
        ProcessEvent(time=T0 - timedelta(minutes=9) + i * step, host="PRD01", pid=20_000 + i,
                     image="C:\\Windows\\System32\\conhost.exe", cmd_line="conhost.exe 0xffffffff",
                     parent_pid=900, parent_image="C:\\Windows\\System32\\svchost.exe",
                     user="NT AUTHORITY\\SYSTEM")
        for i in range(count)
    ]  # fmt: skip


def _attack() -> tuple[list[ProcessEvent], list[NetworkConnection]]:
    """An encoded PowerShell (alerted) that starts a beacon DLL (not alerted) which calls out."""
    loader = ProcessEvent(time=T0, host="PRD01", pid=7000,
                          image="C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe",
                          cmd_line=ENCODED, parent_pid=3000,
                          parent_image="C:\\Windows\\explorer.exe",
                          user="pandalab\\pedro.gustavo")  # fmt: skip
    beacon = ProcessEvent(time=T0 + timedelta(seconds=30), host="PRD01", pid=7100,
                          image="C:\\Windows\\System32\\rundll32.exe",
                          cmd_line="rundll32.exe C:\\Users\\Public\\beacon.dll,Start",
                          parent_pid=7000, parent_image=loader.image,
                          user="pandalab\\pedro.gustavo", sha256=BEACON_SHA)  # fmt: skip
    channel = NetworkConnection(time=T0 + timedelta(seconds=40), host="PRD01", pid=7100,
                                image=beacon.image, dst_ip=C2, dst_port=443)  # fmt: skip
    return [loader, beacon], [channel]


def _alerts() -> list[Alert]:
    return [
        alert("e1", "Suspicious Encoded PowerShell Command Line", Severity.HIGH,
              [("T1059.001", "execution")], pid=7000, name="powershell.exe", cmd=ENCODED,
              user="pandalab\\pedro.gustavo", time=T0),
        alert("e2", "PowerShell Download Cradle", Severity.HIGH,
              [("T1105", "command-and-control")], pid=7000, name="powershell.exe", cmd=ENCODED,
              user="pandalab\\pedro.gustavo", time=T0 + timedelta(seconds=5)),
    ]  # fmt: skip


async def _investigate(edr: FakeEdr) -> InvestigationReport:
    deps = AgentDeps(tools=read_tools(edr))
    alerts = _alerts()
    triage = await run_triage(deps, triage_input(alerts))
    return await run_investigation(
        deps, InvestigationInput(incident_id="inc-1", alerts=alerts, triage=triage)
    )


async def test_the_attackers_events_after_the_first_500_are_read() -> None:
    processes, connections = _attack()
    edr = FakeEdr(processes=[*_background(600), *processes], connections=connections)
    report = await _investigate(edr)
    assert C2 in report.attacker_ips
    assert BEACON_SHA in report.malicious_sha256
    assert "PRD01:7100" in report.malicious_processes
    assert not report.degraded  # the whole window was read


async def test_a_read_the_page_budget_cuts_is_recorded_as_a_gap() -> None:
    processes, connections = _attack()
    edr = FakeEdr(processes=[*_background(PAGE * MAX_PAGES + 100), *processes],
                  connections=connections)  # fmt: skip
    report = await _investigate(edr)
    cut = [g for g in report.evidence_gaps if g.startswith("process events on PRD01 read cut at")]
    assert len(cut) == 1 and "for window 2023-08-18T08:46:50Z to 2023-08-18T09:06:55Z" in cut[0]
    assert report.degraded  # no containment without a human on a read known to be partial


async def test_pages_resume_at_the_last_instant_and_keep_each_event_once() -> None:
    # three events share the instant where a 4-event page ends: none is lost, none is doubled
    first = ProcessEvent(time=T0, host="PRD01", pid=1, image="a.exe")
    tick = T0 + timedelta(seconds=1)
    same = [ProcessEvent(time=tick, host="PRD01", pid=p, image="b.exe") for p in (2, 3, 4)]
    last = ProcessEvent(time=T0 + timedelta(seconds=2), host="PRD01", pid=5, image="c.exe")
    twin = InMemoryEdr(telemetry=Telemetry(processes=[first, *same, last]))
    page = await twin.process_events("PRD01", limit=2)
    assert page.truncated and len(page) == 2  # the twin says it stopped at its limit
    assert not (await twin.process_events("PRD01", limit=5)).truncated

    async def fetch(start: datetime, end: datetime, limit: int) -> list[ProcessEvent]:
        return await twin.process_events("PRD01", start, end, limit)

    window = await read_window(fetch, T0, T0 + timedelta(minutes=1), page=4)
    assert [e.pid for e in window.events] == [1, 2, 3, 4, 5]
    assert (window.cut_at, window.pages) == (None, 2)
    # a page that cannot move past one instant (more events in it than a page holds) is cut
    stuck = await read_window(fetch, tick, T0 + timedelta(minutes=1), page=2)
    assert stuck.cut_at == tick
