"""Remediation rules that do not need a graph: isolation plus the kill of known implants, kills
of the other alerting processes as fallback, krbtgt reset rather than disabled, served DCs left
alone, persistence removed at any stage."""

from __future__ import annotations

from agents.models import ExtractedEntities, Finding, InvestigationReport, TriageResult
from agents.remediation.nodes import (
    PERSISTENCE_FINDING,
    STOP_FINDING,
    deterministic_plan,
    fallback_kills,
)
from agents.remediation.state import RemediationInput
from tools.actions import ActionKind
from tools.event_mappers import registry_path
from tools.models import Category, Severity, Verdict


def _triage(category: Category) -> TriageResult:
    return TriageResult(
        verdict=Verdict.MALICIOUS,
        confidence=0.9,
        severity=Severity.HIGH,
        category=category,
        entities=ExtractedEntities(hosts=["WS5"], processes=["WS5:2316"]),
        playbook_id="hands_on_keyboard",
    )


def _report() -> InvestigationReport:
    return InvestigationReport(
        verdict=Verdict.MALICIOUS,
        confidence=0.9,
        corroborated=True,
        compromised_assets=["WS5"],
        malicious_processes=["WS5:2316"],
    )


def _kinds(kinds: frozenset[ActionKind], category: Category) -> set[tuple[ActionKind, str]]:
    request = RemediationInput(triage=_triage(category), report=_report(), allowed_kinds=kinds)
    return {(p.action.kind, p.action.target) for p in deterministic_plan(request)}


def test_an_alerting_tool_of_a_host_being_isolated_is_contained_not_killed() -> None:
    kinds = frozenset({ActionKind.ISOLATE_HOST, ActionKind.KILL_PROCESS})
    assert _kinds(kinds, Category.EXECUTION) == {(ActionKind.ISOLATE_HOST, "WS5")}


def test_the_known_implant_of_a_host_being_isolated_is_killed_too() -> None:
    # the spec's labelling rule: isolate, plus kill where the process is known
    implant = Finding(summary=STOP_FINDING, evidence=["WS5:2316"])
    report = _report().model_copy(update={"findings": [implant]})
    kinds = frozenset({ActionKind.ISOLATE_HOST, ActionKind.KILL_PROCESS})
    for category, kill in ((Category.EXECUTION, True), (Category.LATERAL_MOVEMENT, False)):
        request = RemediationInput(triage=_triage(category), report=report, allowed_kinds=kinds)
        got = {(p.action.kind, p.action.target) for p in deterministic_plan(request)}
        assert ((ActionKind.KILL_PROCESS, "WS5:2316") in got) is kill
        assert (ActionKind.ISOLATE_HOST, "WS5") in got


def test_kill_when_isolation_is_not_allowed() -> None:
    kinds = frozenset({ActionKind.KILL_PROCESS})
    assert _kinds(kinds, Category.EXECUTION) == {(ActionKind.KILL_PROCESS, "WS5:2316")}


def test_fallback_kills_only_on_uncontained_hosts() -> None:
    triage, report = _triage(Category.EXECUTION), _report()
    assert [p.action.target for p in fallback_kills(triage, report, ["ws5"])] == ["WS5:2316"]
    assert fallback_kills(triage, report, ["OTHER"]) == []
    assert fallback_kills(_triage(Category.LATERAL_MOVEMENT), report, ["WS5"]) == []


def test_registry_paths_use_short_hive_names() -> None:
    raw = "\\REGISTRY\\MACHINE\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Run\\Updater"
    assert registry_path(raw) == "HKLM\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Run\\Updater"
    assert registry_path("HKEY_USERS\\S-1-5-21\\x") == "HKU\\S-1-5-21\\x"
    assert registry_path("HKLM\\SYSTEM\\x") == "HKLM\\SYSTEM\\x"


def _plan(
    category: Category, report: InvestigationReport, users: list[str] | None = None
) -> set[tuple[ActionKind, str]]:
    triage = _triage(category).model_copy(
        update={"entities": ExtractedEntities(hosts=["WS5", "DC01"], users=users or [])}
    )
    request = RemediationInput(triage=triage, report=report, allowed_kinds=frozenset(ActionKind))
    return {(p.action.kind, p.action.target) for p in deterministic_plan(request)}


def test_krbtgt_is_reset_not_disabled() -> None:
    report = _report().model_copy(
        update={"compromised_identities": ["corp\\bob", "corp\\krbtgt"], "malicious_processes": []}
    )
    got = _plan(Category.CREDENTIAL_ACCESS, report)
    assert (ActionKind.RESET_CREDENTIALS, "corp\\krbtgt") in got
    assert (ActionKind.DISABLE_ACCOUNT, "corp\\bob") in got
    assert (ActionKind.DISABLE_ACCOUNT, "corp\\krbtgt") not in got


def test_a_dc_that_only_served_the_request_is_not_isolated_in_its_stead() -> None:
    report = InvestigationReport(
        verdict=Verdict.MALICIOUS, confidence=0.9, corroborated=False, served_assets=["DC01"]
    )
    got = _plan(Category.CREDENTIAL_ACCESS, report, users=["corp\\bob"])
    assert (ActionKind.ISOLATE_HOST, "WS5") in got
    assert (ActionKind.ISOLATE_HOST, "DC01") not in got
    # no account tied to a process: the accounts the alerts named stand in, as hosts do
    assert (ActionKind.DISABLE_ACCOUNT, "corp\\bob") in got


def test_persistence_is_removed_whatever_the_stage() -> None:
    artefact = r"WS6:C:\Windows\System32\wlbsctrl.dll"
    report = _report().model_copy(
        update={"findings": [Finding(summary=PERSISTENCE_FINDING, evidence=[artefact])]}
    )
    assert (ActionKind.REMOVE_PERSISTENCE, artefact) in _plan(Category.LATERAL_MOVEMENT, report)
