"""Each category's playbook on recorded incidents of the committed corpus: triage names a
category, the routing file picks the playbook, and the playbook proposes the truth's containment
and nothing outside what the truth accepts; then, with its containment refused, the playbook's
own follow-up. Reads `truth` only to assert, after the agents ran."""

from __future__ import annotations

from pathlib import Path

import pytest
from langgraph.checkpoint.memory import InMemorySaver

from agents.deps import AgentDeps
from agents.models import ActionOutcome, OutcomeStatus, TriageInput
from agents.triage.graph import run_triage
from orchestrator.activities.routing import route_triage
from playbooks.engine import PlaybookStart, PlaybookStep, step_playbook
from playbooks.registry import get_playbook
from simulations.backends import memory_backends
from simulations.loader import load_all
from tools.actions import ActionKind

CORPUS = Path(__file__).resolve().parents[2] / "simulations" / "incidents"

# incident -> the playbook its triage category routes to (the corpus's categories as triage sees
# them: a defense-evasion truth may be triaged execution from its alerts, the response follows
# the category the investigation decides either way)
RECORDED = {
    "otrf-empire-regsvr32-c2-ws5": "command_and_control",
    "otrf-cmstp-uac-ws5": "defense_evasion",
    "otrf-covenant-getdomaingroup-ws5": "discovery",
    "otrf-python-http-server-ws5": "execution",
    "otrf-msf-record-mic-ws6": "exfiltration",
    "otrf-linux-dd-padding-ubuntu5": "impact",
    "otrf-evtx-path-tamper-desktop-cqf82l6": "phishing",  # an ISO mounted (T1566.001)
    "otrf-dcom-registerxll-ws6": "lateral_movement",
    "otrf-empire-runkey-ws5": "persistence",
    "otrf-lsass-comsvcs-ws5": "credential_access",
}


def _key(kind: str, target: str) -> tuple[str, str]:
    return kind, target.lower()


@pytest.fixture(scope="module")
def corpus():
    loaded = load_all([CORPUS / name for name in RECORDED])
    assert not loaded.problems
    return {i.spec.id: i for i in loaded.incidents}


async def _first_round(incident) -> tuple[AgentDeps, PlaybookStart, str]:
    spec = incident.spec
    tools, _ = memory_backends(spec.environment, incident.telemetry())
    deps = AgentDeps(tools=tools)
    triage = await run_triage(deps, TriageInput(incident_id=spec.id, alerts=spec.alerts))
    assert triage.playbook_id == ""  # the agent names a category only
    routed = await route_triage(triage, tools.inventory)
    start = PlaybookStart(incident_id=spec.id, alerts=spec.alerts, triage=routed)
    return deps, start, routed.playbook_id


def _answer(step: PlaybookStep, refuse: ActionKind | None) -> list[ActionOutcome]:
    return [
        ActionOutcome(
            action=p.action,
            status=OutcomeStatus.DENIED if p.action.kind is refuse else OutcomeStatus.EXECUTED,
            risk=40,
        )
        for p in step.proposals
    ]


async def _run(deps, start, playbook_id, refuse: ActionKind | None = None) -> list[set]:
    """Every round's proposals until the playbook finishes."""
    playbook, saver = get_playbook(playbook_id), InMemorySaver()
    step = await step_playbook(playbook, deps, saver, thread_id="t", start=start)
    rounds = []
    while not step.finished:
        rounds.append({_key(p.action.kind.value, p.action.target) for p in step.proposals})
        resume = _answer(step, refuse)
        step = await step_playbook(playbook, deps, saver, thread_id="t", resume=resume)
    assert playbook_id.replace("_", " ") + " playbook" in step.summary
    return rounds


@pytest.mark.parametrize("incident_id", sorted(RECORDED))
async def test_the_routed_playbook_proposes_the_truths_containment(corpus, incident_id) -> None:
    incident = corpus[incident_id]
    deps, start, playbook_id = await _first_round(incident)
    assert playbook_id == RECORDED[incident_id]
    truth = incident.spec.truth
    expected = {_key(a.kind.value, a.target) for a in truth.expected_actions}
    accepted = expected | {_key(a.kind.value, a.target) for a in truth.acceptable_actions}
    proposed = set().union(*await _run(deps, start, playbook_id))
    assert expected <= proposed, expected - proposed
    assert proposed <= accepted, proposed - accepted


async def test_c2_kills_the_implant_when_the_host_stays_online(corpus) -> None:
    deps, start, playbook_id = await _first_round(corpus["otrf-empire-regsvr32-c2-ws5"])
    rounds = await _run(deps, start, playbook_id, refuse=ActionKind.ISOLATE_HOST)
    assert ("block_ip", "10.10.10.5") in rounds[0]
    assert len(rounds) == 2 and rounds[1]
    assert {kind for kind, _ in rounds[1]} == {"kill_process"}
    assert all(target.startswith("workstation5:") for _, target in rounds[1])


async def test_lateral_movement_revokes_and_resets_when_containment_is_refused(corpus) -> None:
    deps, start, playbook_id = await _first_round(corpus["otrf-dcom-registerxll-ws6"])
    rounds = await _run(deps, start, playbook_id, refuse=ActionKind.DISABLE_ACCOUNT)
    assert ("disable_account", "theshire\\pgustavo") in rounds[0]
    assert {
        ("revoke_sessions", "theshire\\pgustavo"),
        ("reset_credentials", "theshire\\pgustavo"),
    } <= rounds[1]


async def test_discovery_alone_gets_a_ticket_not_containment(corpus) -> None:
    deps, start, playbook_id = await _first_round(corpus["otrf-covenant-getdomaingroup-ws5"])
    assert await _run(deps, start, playbook_id) == []


WRITTEN = Path(__file__).resolve().parent / "incidents"  # recorded-incident/1, for the gaps


async def test_initial_access_isolates_the_server_blocks_the_source_removes_the_shell() -> None:
    loaded = load_all([WRITTEN / "test-webshell-web01"])
    assert not loaded.problems
    incident = loaded.incidents[0]
    deps, start, playbook_id = await _first_round(incident)
    assert playbook_id == "initial_access"
    truth = incident.spec.truth
    accepted = {_key(a.kind.value, a.target) for a in truth.acceptable_actions}
    shell = ("remove_persistence", "web01:c:\\inetpub\\wwwroot\\aspnet_client\\help.aspx")
    rounds = await _run(deps, start, playbook_id)
    assert rounds == [{("isolate_host", "web01"), ("block_ip", "203.0.113.7"), shell}]
    # a public server's isolation refused: the shell's processes are stopped instead
    refused = await _run(deps, start, playbook_id, refuse=ActionKind.ISOLATE_HOST)
    assert refused[1] and {k for k, _ in refused[1]} == {"kill_process"}
    assert refused[1] <= accepted


async def test_phishing_blocks_the_lure_and_secures_the_taken_mailbox() -> None:
    loaded = load_all([WRITTEN / "test-mailbox-takeover-carol"])
    assert not loaded.problems
    incident = loaded.incidents[0]
    deps, start, playbook_id = await _first_round(incident)
    assert playbook_id == "phishing"  # routed by T1566.002 and T1114.003: no phishing category
    truth = incident.spec.truth
    expected = {_key(a.kind.value, a.target) for a in truth.expected_actions}
    accepted = expected | {_key(a.kind.value, a.target) for a in truth.acceptable_actions}
    rounds = await _run(deps, start, playbook_id)
    assert rounds[1:] == [
        {("block_domain", "login-micros0ft.example")},
        {("revoke_sessions", "corp\\carol"), ("reset_credentials", "corp\\carol")},
    ]
    assert expected <= set().union(*rounds) <= accepted


async def test_a_mailed_payload_without_a_taken_account_keeps_the_password(corpus) -> None:
    """An ISO mounted from a mail, its payload run: the host is contained like any other, the
    user's sessions and password are left alone (nothing says the account was taken)."""
    deps, start, playbook_id = await _first_round(corpus["otrf-evtx-path-tamper-desktop-cqf82l6"])
    assert playbook_id == "phishing"
    proposed = set().union(*await _run(deps, start, playbook_id))
    assert ("isolate_host", "desktop-cqf82l6") in proposed
    assert not {k for k, _ in proposed} & {"revoke_sessions", "reset_credentials"}


async def test_impact_kills_the_attackers_process_on_an_isolated_host_too(corpus) -> None:
    """Isolation stops the spread, not an encryptor (here dd overwriting a file) on the host."""
    deps, start, playbook_id = await _first_round(corpus["otrf-linux-dd-padding-ubuntu5"])
    assert playbook_id == "impact"
    rounds = await _run(deps, start, playbook_id)  # every proposal executed, isolation included
    assert rounds == [{("isolate_host", "ubuntu5")}, {("kill_process", "ubuntu5:2168")}]
