"""Alert attention (`agents/attention.py`): when an incident holds more hosts than the agents read,
the hosts of significant alerts are read first and the cut is said. Hand-written incident: a
monitoring agent's background alerts on twelve servers, then the few alerts that matter."""

from __future__ import annotations

from datetime import timedelta

from agents.attention import hosts_by_attention, rank_alerts
from agents.deps import AgentDeps
from agents.entities import AssetIndex
from agents.investigation.graph import run_investigation
from agents.models import InvestigationInput
from agents.triage.graph import run_triage
from agents.triage.scoring import assess_alert
from tests.agents.fakes import T0, FakeEdr, alert, lab_environment, read_tools
from tests.agents.scenarios import triage_input
from tools.models import Alert, Severity
from tools.results import NetworkConnection, ProcessEvent

C2 = "203.0.113.91"
ENCODED = "powershell.exe -nop -w hidden -enc SQBFAFgAIAAoAE4AZQB3AC0ATwBiAGoAZQBjAHQAKQA="


def _background() -> list[Alert]:
    """Directory enumeration by SYSTEM on twelve servers: a monitoring agent's routine."""
    return [
        alert(f"b{i}", "Local Accounts Discovery", Severity.LOW, [("T1087.001", "discovery")],
              host=f"APPSRV{i:02d}", user="NT AUTHORITY\\SYSTEM", pid=800 + i, name="net.exe",
              time=T0 - timedelta(minutes=30) + timedelta(seconds=i))
        for i in range(12)
    ]  # fmt: skip


def _attack() -> list[Alert]:
    return [
        alert("s1", "Suspicious Encoded PowerShell Command Line", Severity.HIGH,
              [("T1059.001", "execution")], host="WS02", pid=6100, name="powershell.exe",
              cmd=ENCODED, user="pandalab\\pedro.gustavo", time=T0),
        alert("s2", "LSASS Memory Dump Via Comsvcs", Severity.CRITICAL,
              [("T1003.001", "credential-access")], host="WS02", pid=6100, name="powershell.exe",
              cmd="rundll32 comsvcs.dll MiniDump 640 C:\\Users\\Public\\l.dmp full",
              user="pandalab\\pedro.gustavo", time=T0 + timedelta(seconds=20)),
    ]  # fmt: skip


def _edr() -> FakeEdr:
    loader = ProcessEvent(time=T0 - timedelta(seconds=5), host="WS02", pid=6100,
                          image="C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe",
                          cmd_line=ENCODED, parent_pid=3000,
                          parent_image="C:\\Windows\\explorer.exe",
                          user="pandalab\\pedro.gustavo")  # fmt: skip
    channel = NetworkConnection(time=T0 + timedelta(seconds=2), host="WS02", pid=6100,
                                image=loader.image, dst_ip=C2, dst_port=443)  # fmt: skip
    return FakeEdr(processes=[loader], connections=[channel])


async def test_significant_alerts_are_read_before_a_crowd_of_background_ones() -> None:
    alerts = [*_background(), *_attack()]
    deps = AgentDeps(tools=read_tools(_edr()))
    triage = await run_triage(deps, triage_input(alerts))
    report = await run_investigation(
        deps, InvestigationInput(incident_id="inc-1", alerts=alerts, triage=triage)
    )
    assert C2 in report.attacker_ips  # WS02's telemetry was read
    assert any("with only background alerts not read" in f.summary for f in report.findings)
    assert not report.degraded  # only background hosts were left out


def test_ranking_puts_distinct_significant_rules_first_and_says_what_it_cut() -> None:
    alerts = [*_background(), *_attack()]
    assessments = [assess_alert(a) for a in alerts]
    ranked = rank_alerts(alerts, assessments)
    assert [a.uid for a in ranked[:2]] == ["s2", "s1"]  # by score, background after
    index = AssetIndex(lab_environment())
    attention = hosts_by_attention(alerts, assessments, index, limit=3)
    assert attention.hosts[0] == "WS02" and len(attention.hosts) == 3
    assert attention.gaps == [] and "10 host(s)" in attention.notes[0]
    # when significant hosts themselves exceed the cap, the cut is an evidence gap
    crowded = hosts_by_attention(alerts, assessments, index, limit=0)
    assert crowded.gaps and "WS02" in crowded.gaps[0]
