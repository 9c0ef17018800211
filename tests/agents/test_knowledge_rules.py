"""Analyst knowledge that needs no telemetry: how one alert is read, and the incident category."""

from __future__ import annotations

from agents.knowledge import cmdline_indicators, is_autostart_key, technique_tactic
from agents.triage.scoring import assess_alert, incident_category
from agents.triage.state import AlertAssessment
from tests.agents.fakes import alert
from tools.models import Category, Severity

NETSH = (
    r'"C:\windows\system32\netsh.exe" advfirewall firewall add rule name=python.exe dir=in '
    r"action=allow program=C:\users\bob\appdata\local\programs\python\python39\python.exe "
    r"enable=yes localport=any protocol=tcp remoteip=any"
)


def test_discovery_by_a_machine_account_counts_as_ordinary_activity() -> None:
    def policy_read(user: str) -> AlertAssessment:
        return assess_alert(
            alert("d1", "Password Policy Enumerated", Severity.MEDIUM, [("T1201", "discovery")],
                  host="DC01", user=user, pid=696, name="lsass.exe")
        )  # fmt: skip

    assert policy_read("pandalab\\dc01$").noisy
    assert policy_read("NT AUTHORITY\\SYSTEM").noisy
    person = policy_read("pandalab\\pedro.gustavo")
    assert not person.noisy
    assert person.score > policy_read("pandalab\\dc01$").score


def test_discovery_by_a_system_account_with_tradecraft_still_counts() -> None:
    a = alert("d2", "Recon", Severity.MEDIUM, [("T1087.002", "discovery")], user="SYSTEM",
              pid=5, name="powershell.exe", cmd="powershell -enc " + "A" * 40)  # fmt: skip
    assert not assess_alert(a).noisy


def test_rules_documented_to_fire_on_windows_housekeeping_are_noisy() -> None:
    authroot = alert("n1", "New Root or CA or AuthRoot Certificate to Store", Severity.MEDIUM,
                     [("T1553.004", "defense-evasion")],
                     rule_uid="d223b46b-5621-4037-88fe-fda32eead684")  # fmt: skip
    assert assess_alert(authroot).noisy


def test_lsass_memory_claim_without_lsass_does_not_stage_credential_access() -> None:
    generic = alert("c1", "HackTool - Generic Process Access", Severity.HIGH,
                    [("T1003.001", "credential-access")], pid=8972, name="PurpleSharp.exe",
                    cmd="PurpleSharp.exe /t T1055.002")  # fmt: skip
    named = alert("c2", "LSASS Memory Access by Tool With Dump Keyword In Name", Severity.HIGH,
                  [("T1003.001", "credential-access")], pid=6772, name="Dumpert.exe",
                  cmd="Dumpert.exe")  # fmt: skip
    dump_file = alert("c3", "Generic Process Access", Severity.HIGH,
                      [("T1003.001", "credential-access")], pid=7, name="x.exe", cmd="x.exe",
                      file_path=r"C:\Windows\Temp\debug648.dmp")  # fmt: skip
    assert "credential-access" not in assess_alert(generic).tactics
    assert "credential-access" in assess_alert(named).tactics
    assert "credential-access" in assess_alert(dump_file).tactics


def test_discovery_techniques_name_the_discovery_tactic() -> None:
    for technique in ("T1087.002", "T1069.001", "T1482", "T1018", "T1007"):
        assert technique_tactic(technique) == "discovery"
    powerview = alert("p1", "Malicious PowerShell Commandlets", Severity.HIGH,
                      [("T1059.001", "execution"), ("T1069.002", "execution")])  # fmt: skip
    assert {"execution", "discovery"} <= set(assess_alert(powerview).tactics)


def _assessment(rule: str, tactic: str, weight: float) -> AlertAssessment:
    return AlertAssessment(uid=rule, rule=rule, host="WS5", score=weight, stage_weight=weight,
                           noisy=False, tactics=[tactic])  # fmt: skip


def test_discovery_yields_to_another_stage_once_telemetry_shows_the_attacker() -> None:
    assessments = [
        _assessment("recon", "discovery", 4.5),
        _assessment("uac", "defense-evasion", 4.0),
    ]
    assert incident_category(assessments, {}, corroboration=0.0) is Category.DISCOVERY
    assert incident_category(assessments, {}, corroboration=2.0) is Category.DEFENSE_EVASION
    only_recon = [_assessment("recon", "discovery", 4.5)]
    assert incident_category(only_recon, {}, corroboration=5.0) is Category.DISCOVERY


def test_inbound_firewall_opening_for_a_user_program_is_tradecraft() -> None:
    assert [why for _, why in cmdline_indicators(NETSH)] == [
        "inbound firewall opening for a user-writable program"
    ]
    installed = NETSH.replace(
        r"C:\users\bob\appdata\local\programs\python\python39", r'"C:\Program Files\App'
    )
    assert cmdline_indicators(installed) == []
    outbound = NETSH.replace("dir=in", "dir=out")
    assert cmdline_indicators(outbound) == []


def test_logon_script_is_tradecraft_and_an_autostart_value() -> None:
    cmd = r"REG.exe ADD HKCU\Environment /v UserInitMprLogonScript /d C:\Temp\a.bat /f"
    assert [why for _, why in cmdline_indicators(cmd)] == ["logon script"]
    assert is_autostart_key(r"HKU\S-1-5-21-1-2-3-500\Environment\UserInitMprLogonScript")
    assert not is_autostart_key(r"HKU\S-1-5-21-1-2-3-500\Environment\TEMP")
