"""Each claim of the agents links to the records it rests on: a recorded incident's triage and
investigation replayed over its recorded telemetry (the in-memory twins) by the agent
activities' own code, then its incident page read over HTTP. The links open the host's records
around the claim's time, kept by the activity from what it read: opening them asks the EDR
nothing, and every kept record is one the EDR returned to the agents."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from temporalio.testing import ActivityEnvironment

from agents.deps import AgentDeps
from agents.investigation.graph import run_investigation
from agents.models import InvestigationInput, TriageResult
from orchestrator.activities.agents import AgentActivities
from orchestrator.activities.evidence import RecordingEdr, audit_investigation, keep_evidence
from orchestrator.console.evidence_pages import WINDOW
from orchestrator.models import IncidentRef
from orchestrator.store.records import IncidentRecord
from simulations.backends import memory_backends
from simulations.loader import LoadedIncident, load_incident
from tests.orchestrator.console.seed import NOW, client, console, passwords, sign_in
from tools.toolsets import ReadTools

INCIDENT = Path(__file__).parents[3] / "simulations" / "incidents" / "otrf-lsass-procdump-acct01"
LINK = re.compile(r'<a href="([^"]+)" class="evidence-link">')
ITEM = re.compile(r"<li>(.*?)</li>", re.S)


class Witness:
    """The recorded EDR twin, noting every call and every record it returned."""

    def __init__(self, edr: Any) -> None:
        self.edr = edr
        self.calls = 0
        self.returned: list[Any] = []

    def __getattr__(self, name: str) -> Callable[..., Awaitable[Any]]:
        method = getattr(self.edr, name)

        async def call(*args: Any, **kwargs: Any) -> Any:
            self.calls += 1
            found = await method(*args, **kwargs)
            if isinstance(found, list):
                self.returned += found
            return found

        return call


class RecordedBackends:
    def __init__(self, tools: ReadTools) -> None:
        self.witness = Witness(tools.edr)
        self.tools = replace(tools, edr=self.witness)  # type: ignore[arg-type]

    def read_tools(self, incident_id: str) -> ReadTools:
        return self.tools


def loaded() -> LoadedIncident:
    return LoadedIncident(INCIDENT, load_incident(INCIDENT))


async def investigate(store: Any, backends: RecordedBackends, triage: TriageResult) -> None:
    """The investigation's part of `playbooks.step`: run it, keep, audit."""
    spec = loaded().spec
    recorder = RecordingEdr(backends.tools.edr)
    deps = AgentDeps(tools=replace(backends.tools, edr=recorder))
    request = InvestigationInput(incident_id="inc-r", alerts=spec.alerts, triage=triage)
    report = await run_investigation(deps, request)
    await keep_evidence(store, "inc-r", recorder, [r for f in report.findings for r in f.refs])
    await audit_investigation(store, "inc-r", report)
    await audit_investigation(store, "inc-r", report)  # a later round's same report: once


def as_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def same_record(kept: Any, record: Any) -> bool:
    data = record.model_dump(mode="json")
    shown = dict(kept.fields)
    return (
        record.time.astimezone(UTC) == kept.time
        and getattr(record, "pid", None) == kept.pid
        and all(k in data and v == as_text(data[k]) for k, v in shown.items())
        and all(k in shown for k, v in data.items() if v and k not in ("host", "time"))
    )


async def test_a_replayed_incidents_claims_link_to_the_records_the_agents_read(
    tmp_path: Path,
) -> None:
    incident = loaded()
    tools, _ = memory_backends(incident.spec.environment, incident.telemetry())
    backends = RecordedBackends(tools)
    passwords(tmp_path / "console-passwords.yaml", "alice")
    async with console(tmp_path) as c, client(c.app) as http:
        store = c.store
        await store.ensure_incident(
            IncidentRecord(id="inc-r", group_key="g-r", title="replayed", opened_at=NOW)
        )
        for n, alert in enumerate(incident.spec.alerts):
            await store.add_alert(alert, "inc-r", f"fp-{n}")
        activities = AgentActivities(store, backends, checkpointer=None)  # type: ignore[arg-type]
        env = ActivityEnvironment()
        triage = await env.run(activities.triage, IncidentRef(incident_id="inc-r"))
        await env.run(investigate, store, backends, triage)
        assert await store.evidence.count("inc-r") > 0
        audited = [e for e in await store.audit_entries("inc-r") if e.type == "agent.investigation"]
        assert len(audited) == 1 and audited[0].detail["findings"]
        reads = backends.witness.calls
        await sign_in(http, "alice")
        page = (await http.get("/console/incidents/inc-r")).text

        items = [m for m in ITEM.findall(page) if "evidence-link" in m]
        telemetry_claims = [i for i in items if not re.match(r"(<a [^>]*>)?alert ", i)]
        assert telemetry_claims, "no claim from telemetry links to its records"
        assert "Investigation findings" in page
        links = {html.unescape(u) for u in LINK.findall(page)}
        assert len(links) >= 3
        highlighted = 0
        for url in sorted(links):
            shown = await http.get(url)
            assert shown.status_code == 200, url
            assert "kept-event" in shown.text, f"{url} shows no kept record"
            highlighted += "kept-event rests-on-row" in shown.text
        assert highlighted, "no link opens on the process it names"
        assert backends.witness.calls == reads, "opening the pages read the EDR again"

        returned = backends.witness.returned
        for url in links:
            query = parse_qs(urlsplit(url).query)
            at = datetime.fromisoformat(query["at"][0])
            kept = await store.evidence.around("inc-r", query["host"][0], at, WINDOW)
            assert kept
            for record in kept:
                assert any(same_record(record, r) for r in returned), record


async def test_the_records_page_refuses_bad_input_in_words(tmp_path: Path) -> None:
    passwords(tmp_path / "console-passwords.yaml", "alice")
    async with console(tmp_path) as c, client(c.app) as http:
        await c.store.ensure_incident(
            IncidentRecord(id="inc-q", group_key="g-q", title="q", opened_at=NOW)
        )
        await sign_in(http, "alice")
        base = "/console/incidents/inc-q/events"
        bad = await http.get(f"{base}?host=ws-1&at=yesterday&pid=x1")
        assert bad.status_code == 400
        assert "at is not an ISO 8601 time; pid is not a number." in bad.text
        assert (await http.get(f"{base}?at=2026-01-01T00:00:00Z")).status_code == 400
        missing = await http.get("/console/incidents/nope/events?host=a&at=2026-01-01T00:00:00Z")
        assert missing.status_code == 404
        empty = await http.get(f"{base}?host=ws-1&at=2026-01-01T00:00:00Z")
        assert empty.status_code == 200 and "No record of this host was kept" in empty.text
