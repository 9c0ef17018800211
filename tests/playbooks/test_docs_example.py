"""The worked example of docs/authoring-playbooks.md, as written there: it compiles, registers
as an outside package's entry point would, is routed to by a routing file, and runs on the
corpus's command-and-control incident."""

from __future__ import annotations

import re
from pathlib import Path
from types import ModuleType

import pytest
from langgraph.checkpoint.memory import InMemorySaver

from agents.deps import AgentDeps
from agents.models import ActionOutcome, OutcomeStatus, TriageInput
from agents.triage.graph import run_triage
from playbooks.engine import PlaybookStart, step_playbook
from playbooks.registry import get_playbook, playbook_for
from playbooks.routing import load_routing
from simulations.backends import memory_backends
from simulations.loader import load_all
from tools.models import Category

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "authoring-playbooks.md"


def _example() -> ModuleType:
    section = DOC.read_text(encoding="utf-8").split("## Worked example: a team's own package", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S)
    assert code is not None, "the worked example has no python block"
    module = ModuleType("dns_sinkhole_example")
    exec(compile(code.group(1), str(DOC), "exec"), module.__dict__)
    return module


async def test_the_worked_example_routes_and_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    playbook = _example().PLAYBOOK
    from playbooks import registry

    monkeypatch.setattr(registry, "BUILT_IN", (*registry.BUILT_IN, playbook))
    registry.registered_playbooks.cache_clear()
    try:
        routes = tmp_path / "routing.yaml"
        routes.write_text(
            "default: hands_on_keyboard\nroutes:\n  - playbook: dns_sinkhole\n"
            "    categories: [command_and_control]\n"
        )
        routing = load_routing(routes, [p.id for p in registry.registered_playbooks()])
        assert playbook_for(Category.COMMAND_AND_CONTROL, routing=routing) is playbook
        assert get_playbook("dns_sinkhole") is playbook

        incident = load_all([ROOT / "simulations/incidents/otrf-empire-regsvr32-c2-ws5"]).incidents[
            0
        ]
        tools, _ = memory_backends(incident.spec.environment, incident.telemetry())
        deps = AgentDeps(tools=tools)
        spec = incident.spec
        triage = await run_triage(deps, TriageInput(incident_id=spec.id, alerts=spec.alerts))
        start = PlaybookStart(incident_id=spec.id, alerts=spec.alerts, triage=triage)
        saver = InMemorySaver()
        step = await step_playbook(playbook, deps, saver, thread_id="t", start=start)
        kinds = []
        while not step.finished:
            kinds.append({p.action.kind.value for p in step.proposals})
            refused = [
                ActionOutcome(action=p.action, status=OutcomeStatus.DENIED, risk=40)
                for p in step.proposals
            ]
            step = await step_playbook(playbook, deps, saver, thread_id="t", resume=refused)
        # contain, then (every isolation refused) stop the implant; the sinkhole round comes
        # first when the investigation confirmed a domain
        assert {"isolate_host", "block_ip"} <= set().union(*kinds)
        assert kinds[-1] == {"kill_process"}
        assert "dns sinkhole playbook" in step.summary
    finally:
        registry.registered_playbooks.cache_clear()
