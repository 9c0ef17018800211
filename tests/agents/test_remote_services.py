"""A service created on a host from another machine (the remote `sc create` of lateral movement):
triage counts it whatever alerted, the investigation names the source and the account, and the
service is removed under its key name; Windows' own per-user services and installed programs are
nobody's movement."""

from __future__ import annotations

from datetime import timedelta

from agents.deps import AgentDeps
from agents.investigation.graph import run_investigation
from agents.models import InvestigationInput
from agents.persistence.artefacts import find_artefacts
from agents.persistence.attribution import Attacker
from agents.remediation.graph import run_remediation
from agents.telemetry import HostTelemetry
from agents.triage.graph import run_triage
from tests.agents.fakes import T0, FakeEdr, alert, read_tools
from tests.agents.scenarios import triage_input
from tools.actions import ActionKind
from tools.models import Alert, Asset, Environment, Identity, Severity, Verdict
from tools.results import LogonEvent, SystemEvent

ALICE = "corp\\alice"
IMAGE = r"C:\Windows\System32\updhelper.exe"


def _environment() -> Environment:
    return Environment(
        assets=[
            Asset(id="WS10", hostname="ws10.corp.example", kind="workstation",
                  criticality="medium", ips=["10.20.0.10"]),
            Asset(id="WS11", hostname="ws11.corp.example", kind="workstation",
                  criticality="medium", ips=["10.20.0.11"]),
        ],
        identities=[Identity(id=ALICE, kind="admin", privileged=True)],
        internal_networks=["10.20.0.0/16"],
    )  # fmt: skip


def _logoff() -> list[Alert]:
    """The only alert: an informational logoff of the session that carried the calls."""
    return [
        alert("l1", "User Logoff Event", Severity.INFORMATIONAL, [("T1531", "impact")],
              host="WS11", user=ALICE, time=T0),
    ]  # fmt: skip


def _logon(seconds: float = -30) -> LogonEvent:
    return LogonEvent(time=T0 + timedelta(seconds=seconds), host="WS11", user="CORP.EXAMPLE\\alice",
                      logon_type=3, src_ip="10.20.0.10")  # fmt: skip


def _install(
    event_id: int, name: str, command: str = IMAGE, user: str | None = None, start: str = "auto"
) -> SystemEvent:
    return SystemEvent(time=T0 - timedelta(seconds=20), host="WS11", event_id=event_id, name=name,
                       command=command, user=user, detail=f"{start} start")  # fmt: skip


async def _run(edr: FakeEdr) -> tuple[Verdict, set[tuple[ActionKind, str]]]:
    deps = AgentDeps(tools=read_tools(edr, _environment()))
    alerts = _logoff()
    triage = await run_triage(deps, triage_input(alerts))
    report = await run_investigation(
        deps, InvestigationInput(incident_id="inc-1", alerts=alerts, triage=triage)
    )
    plan = await run_remediation(deps, triage, report, frozenset(ActionKind))
    return triage.verdict, {(p.action.kind, p.action.target) for p in plan.proposals}


async def test_a_service_installed_from_another_workstation_is_a_lateral_movement() -> None:
    edr = FakeEdr(
        logon_events=[_logon()],
        system=[
            # Security names the service's key and the caller; System its display name
            _install(4697, "updsvc", user="CORP\\alice"),
            _install(7045, "Update Helper"),
        ],
    )
    verdict, got = await _run(edr)
    assert verdict is Verdict.MALICIOUS
    assert (ActionKind.ISOLATE_HOST, "WS10") in got
    assert (ActionKind.DISABLE_ACCOUNT, ALICE) in got
    removals = {t for k, t in got if k is ActionKind.REMOVE_PERSISTENCE}
    assert removals == {"WS11:updsvc"}  # one install, one artefact, by its key name


async def test_windows_per_user_services_at_a_logon_are_nobodys_install() -> None:
    # at each logon Windows creates the user's instances of its per-user services, recorded by
    # the machine account, some of them auto start
    per_user = _install(
        4697, "CDPUserSvc_4f2a1", r"C:\Windows\system32\svchost.exe -k UnistackSvcGroup",
        user="CORP\\WS11$",
    )  # fmt: skip
    verdict, got = await _run(FakeEdr(logon_events=[_logon()], system=[per_user]))
    assert verdict is Verdict.BENIGN and got == set()
    # and on a host where the account is compromised, it is still no artefact
    telemetry = HostTelemetry(host="WS11", system=[per_user], logons=[_logon()])
    attacker = Attacker(frozenset(), frozenset(), frozenset({"alice"}), frozenset())
    assert find_artefacts(telemetry, attacker) == []


async def test_an_installed_program_or_a_one_shot_service_is_not_a_movement() -> None:
    agent = _install(4697, "acmeagent", r'"C:\Program Files\Acme\agent.exe"', user="CORP\\alice")
    once = _install(4697, "runonce", IMAGE, user="CORP\\alice", start="demand")
    verdict, got = await _run(FakeEdr(logon_events=[_logon()], system=[agent, once]))
    assert verdict is Verdict.BENIGN and got == set()


async def test_an_install_long_after_the_logon_is_not_tied_to_it() -> None:
    late = _install(4697, "updsvc", user="CORP\\alice")
    verdict, _ = await _run(FakeEdr(logon_events=[_logon(seconds=-600)], system=[late]))
    assert verdict is Verdict.BENIGN


async def test_the_same_install_reported_under_one_event_type_is_one_artefact() -> None:
    # an EDR that reports both records as one "service created" type: the one naming the
    # installer gives the key name, the per-user instances name the machine account
    edr = FakeEdr(
        logon_events=[_logon()],
        system=[
            _install(7045, "updsvc", user="CORP\\alice"),
            _install(7045, "Update Helper"),
            _install(7045, "CDPUserSvc_4f2a1", r"C:\Windows\system32\svchost.exe -k Unistack",
                     user="CORP\\WS11$"),
        ],
    )  # fmt: skip
    verdict, got = await _run(edr)
    assert verdict is Verdict.MALICIOUS
    assert {t for k, t in got if k is ActionKind.REMOVE_PERSISTENCE} == {"WS11:updsvc"}
