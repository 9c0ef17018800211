"""Live parity: the committed corpus sent to a real `garrison server` over `POST /api/alerts`, its
approval requests answered over the API by the incidents' simulated analysts, ends exactly as
`garrison simulate` does (`simulations/baselines/corpus.json`): for every recorded incident the
same verdict, the same set of executed actions (kind, target) and as many approval requests.

One server for the module (`tests/simulations/live_stack.py`). Every recording's alerts go in one
request as OCSF Detection Findings (`alert_to_ocsf`, as `garrison rehearse` sends them, recorded
order, no waiting), correlated by the recorded id, so each becomes incident `live--<id>`, served
by its recording's twins. A subset also goes in as Falcon Alerts v2 entities and as Graph
alerts_v2 alerts (the EDR emulators' renderers, the recorded id as `aggregate_id`/`incidentId`),
each once the previous run of that recording has closed, so it opens an incident of its own.

"Executed", as `simulations/baseline.py` counts it from the workflow's result: an action that
ran, including one rolled back later (a benign verdict compensates). In the ledger that is the
statuses `succeeded` and `rolled_back`; `failed` did not run.

What the vendor shapes cannot carry (`vendor_losses`): Falcon names a detection by its numeric
`pattern_id`, so the recorded (Sigma) rule uid is lost, and with it the agents' noisy-rule
knowledge (`agents.knowledge.NOISY_RULES`, keyed by those uids) for rules its titles do not
match; Graph alert severity has no `critical` (it reads `high`). Recordings whose alerts lose
nothing the agents read must match the baseline; the others must still close with a verdict,
and how they differ is reported.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from agents.triage.scoring import is_noisy
from orchestrator.ingest.shapes import Shape, alert_to_ocsf, normalise
from simulations.analyst import SimulatedAnalyst
from simulations.baseline import load_baseline
from simulations.loader import LoadedIncident, load_all
from tests.simulations.live_stack import AnalystDesk, LiveServer, running_server
from tools.edr.emulators.alert_shapes import falcon_alert, graph_alert
from tools.models import Alert

pytestmark = [pytest.mark.temporal, pytest.mark.simulation, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / "simulations" / "incidents"
BASELINE = ROOT / "simulations" / "baselines" / "corpus.json"
EXECUTED = frozenset({"succeeded", "rolled_back"})
CLOSE_TIMEOUT_S = 600.0
# Approvals (one and two approvers; the corpus's oracles deny none), both verdicts, a domain
# entity, a critical alert, rules known to be noisy.
VENDOR_SUBSET = (
    "otrf-covenant-dcsync-ws5",
    "otrf-covenant-smb-copy-ws5-ws6",
    "otrf-dcom-registerxll-ws6",
    "otrf-empire-dcsync-ws5",
    "otrf-rubeus-createnetonly-ws6",
    "otrf-sharpview-acl-ws5",
    "otrf-dc-sam-policy-mordordc",
    "otrf-machine-logoffs-mordordc-0806",
)
FALCON_CID = "0" * 32
GRAPH_TENANT = "parity-tenant"
# Alert fields no agent reads: the sender's own ids and product, the recording's telemetry rows.
UNREAD = {"uid", "product", "evidence"}


def ocsf_records(loaded: LoadedIncident) -> list[dict[str, Any]]:
    spec = loaded.spec
    return [
        alert_to_ocsf(a, spec.environment, event_uid_prefix=spec.id, correlation_uid=spec.id)
        for a in spec.alerts
    ]


def falcon_records(loaded: LoadedIncident) -> list[dict[str, Any]]:
    records = []
    for seq, alert in enumerate(loaded.spec.alerts):
        host = alert.entities.host
        device: dict[str, Any] = {
            "device_id": hashlib.sha256((host or "").lower().encode()).hexdigest()[:32],
            "cid": FALCON_CID,
            "platform_name": "Windows",
        }
        if host:  # a recorded alert without a host (a network sensor's) stays without one
            device["hostname"] = host
        entity = falcon_alert(alert, device, FALCON_CID, alert.time, seq)
        entity["aggregate_id"] = loaded.spec.id
        records.append(entity)
    return records


def graph_records(loaded: LoadedIncident) -> list[dict[str, Any]]:
    records = []
    for seq, alert in enumerate(loaded.spec.alerts):
        host = alert.entities.host
        machine = None
        if host:
            machine_id = hashlib.sha1(host.lower().encode(), usedforsecurity=False).hexdigest()
            machine = {"id": machine_id, "computerDnsName": host, "osPlatform": "Windows10"}
        records.append(graph_alert(alert, machine, GRAPH_TENANT, loaded.spec.id, alert.time, seq))
    return records


RENDER: dict[Shape, Callable[[LoadedIncident], list[dict[str, Any]]]] = {
    Shape.OCSF: ocsf_records,
    Shape.FALCON: falcon_records,
    Shape.GRAPH: graph_records,
}


def _read(alert: Alert) -> dict[str, Any]:
    """What the agents read of an alert. Of the rule, its name and whether it is known to be
    noisy (`is_noisy`); its uid otherwise only tells rules apart, checked in `vendor_losses`.
    Domains are compared as DNS compares them (the agents lower-case them too)."""
    fields = alert.model_dump(mode="json", exclude=UNREAD)
    fields["rule"] = {"name": alert.rule.name, "noisy": is_noisy(alert)}
    if alert.entities.domain:
        fields["entities"]["domain"] = alert.entities.domain.lower()
    return fields


def vendor_losses(loaded: LoadedIncident, shape: Shape) -> list[str]:
    """`alert i: field recorded -> received` for what the agents read and `shape` loses."""
    losses = []
    rules: dict[str, set[str]] = {}
    for index, (alert, record) in enumerate(
        zip(loaded.spec.alerts, RENDER[shape](loaded), strict=True)
    ):
        received = normalise(record, shape).alert
        rules.setdefault(received.rule.uid, set()).add(alert.rule.uid)
        before, after = _read(alert), _read(received)
        for key in sorted(before):
            if before[key] != after[key]:
                losses.append(f"alert {index}: {key} {before[key]} -> {after[key]}")
    losses += [f"rules {sorted(m)} all read as {uid}" for uid, m in rules.items() if len(m) > 1]
    return losses


@dataclass(frozen=True)
class Outcome:
    incident_id: str
    status: str
    verdict: str | None
    executed: frozenset[tuple[str, str]]
    approvals: int  # requests the incident made


@dataclass
class Channel:
    """One shape's run: which incident each recording became, and how it ended."""

    shape: Shape
    incidents: dict[str, str] = field(default_factory=dict)  # recorded id -> live incident
    refused: list[str] = field(default_factory=list)
    outcomes: dict[str, Outcome] = field(default_factory=dict)  # recorded id -> outcome


@dataclass
class LiveRun:
    channels: dict[Shape, Channel]
    desk: AnalystDesk
    timings: dict[str, float]
    server_log: str


class Watcher:
    """The statuses of the server's incidents, polled once for every waiter."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http
        self.closed: set[str] = set()
        self.changed = asyncio.Condition()

    async def run(self) -> None:
        while True:
            with contextlib.suppress(httpx.TransportError):
                reply = await self.http.get("/api/incidents", params={"limit": 500})
                if reply.status_code == 200:
                    async with self.changed:
                        self.closed = {r["id"] for r in reply.json() if r["status"] == "closed"}
                        self.changed.notify_all()
            await asyncio.sleep(1.0)

    async def wait_closed(self, incident_id: str) -> None:
        async with self.changed:
            await self.changed.wait_for(lambda: incident_id in self.closed)


async def send(http: httpx.AsyncClient, loaded: LoadedIncident, channel: Channel) -> str | None:
    """One request with all the recording's alerts, in recorded order; the incident, or None."""
    records = RENDER[channel.shape](loaded)
    params, problem = {"shape": channel.shape.value}, ""
    for _attempt in range(20):  # a re-sent alert is a duplicate, answered like the first
        try:
            reply = await http.post("/api/alerts", json=records, params=params)
        except httpx.TransportError as error:
            problem = repr(error)
            await asyncio.sleep(1.0)
            continue
        if reply.status_code != 429:
            break
        problem = f"429 {reply.text[:200]}"
        await asyncio.sleep(float(reply.headers.get("retry-after", "1")))
    else:
        channel.refused.append(f"{loaded.spec.id}: not taken after 20 attempts: {problem}")
        return None
    body = reply.json()
    if (
        reply.status_code != 202
        or body["accepted"] != len(records)
        or body["rejected"]
        or len(body["incidents"]) != 1
    ):
        channel.refused.append(f"{loaded.spec.id}: {reply.status_code} {reply.text[:300]}")
        return None
    channel.incidents[loaded.spec.id] = body["incidents"][0]
    return body["incidents"][0]


async def outcome(http: httpx.AsyncClient, incident_id: str) -> Outcome:
    detail = (await http.get(f"/api/incidents/{incident_id}")).raise_for_status().json()
    return Outcome(
        incident_id=incident_id,
        status=detail["incident"]["status"],
        verdict=detail["incident"]["verdict"],
        executed=frozenset(
            (a["action"]["kind"], a["action"]["target"])
            for a in detail["actions"]
            if a["status"] in EXECUTED
        ),
        approvals=len(detail["approvals"]),
    )


async def drive(server: LiveServer, corpus: dict[str, LoadedIncident]) -> LiveRun:
    channels = {shape: Channel(shape) for shape in RENDER}

    def analyst_of(incident_id: str) -> SimulatedAnalyst | None:
        loaded = corpus.get(incident_id.rsplit("--", 1)[-1])
        if loaded is None:
            return None
        return SimulatedAnalyst(spec=loaded.spec.analyst, truth=loaded.spec.truth)

    desk = AnalystDesk(server, analyst_of)
    timings: dict[str, float] = {}
    began = time.monotonic()
    async with server.client(server.sender) as sender, server.client(server.reader) as reader:
        watcher = Watcher(reader)
        background = [asyncio.create_task(desk.run()), asyncio.create_task(watcher.run())]

        async def close_all(channel: Channel) -> None:
            await asyncio.gather(*(watcher.wait_closed(i) for i in channel.incidents.values()))

        async def vendor_chain(recorded: str) -> None:
            """Falcon once the OCSF run has closed, then Graph once Falcon's has."""
            previous = channels[Shape.OCSF].incidents.get(recorded)
            for shape in (Shape.FALCON, Shape.GRAPH):
                if previous is None:
                    return
                await watcher.wait_closed(previous)
                previous = await send(sender, corpus[recorded], channels[shape])
                if previous is not None:
                    await watcher.wait_closed(previous)

        try:
            for loaded in corpus.values():
                await send(sender, loaded, channels[Shape.OCSF])
            timings["send_corpus_s"] = time.monotonic() - began
            async with asyncio.timeout(CLOSE_TIMEOUT_S):
                await asyncio.gather(
                    close_all(channels[Shape.OCSF]), *(vendor_chain(r) for r in VENDOR_SUBSET)
                )
        except TimeoutError:
            pass  # what did not close is reported per incident below
        finally:
            for task in background:
                task.cancel()
            for ended in await asyncio.gather(*background, return_exceptions=True):
                if isinstance(ended, Exception):  # a crashed desk or watcher, not a finding
                    desk.problems.append(f"a background task failed: {ended!r}")
        timings["all_closed_s"] = time.monotonic() - began
        for channel in channels.values():
            found = await asyncio.gather(*(outcome(reader, i) for i in channel.incidents.values()))
            channel.outcomes = dict(zip(channel.incidents, found, strict=True))
    return LiveRun(channels, desk, timings, server.tail(60))


@pytest.fixture(scope="module")
def corpus() -> dict[str, LoadedIncident]:
    loaded = load_all([CORPUS])
    assert loaded.problems == []
    return {incident.spec.id: incident for incident in loaded.incidents}


@pytest.fixture(scope="module")
def baseline() -> dict[str, dict[str, Any]]:
    return {row["id"]: row for row in load_baseline(BASELINE)["per_incident"]}


@pytest.fixture(scope="module")
async def live_run(
    tmp_path_factory: pytest.TempPathFactory, corpus: dict[str, LoadedIncident]
) -> AsyncIterator[LiveRun]:
    began = time.monotonic()
    async with running_server(tmp_path_factory.mktemp("live-parity"), CORPUS) as server:
        started = time.monotonic() - began
        run = await drive(server, corpus)
    run.timings = {"server_start_s": started, **run.timings, "module_s": time.monotonic() - began}
    print("live parity timings:", {k: round(v, 1) for k, v in run.timings.items()})
    yield run


def differences(
    channel: Channel, baseline: dict[str, dict[str, Any]], recorded: list[str]
) -> dict[str, list[str]]:
    """Recorded id -> how its live run differs from the baseline (nothing when equal)."""
    found: dict[str, list[str]] = {}
    for rid in recorded:
        row, ended = baseline[rid], channel.outcomes.get(rid)
        if ended is None:
            found[rid] = ["never became an incident (see the refusals)"]
            continue
        lines = []
        if ended.status != "closed":
            lines.append(f"{ended.incident_id} still {ended.status} after {CLOSE_TIMEOUT_S:.0f}s")
        if ended.verdict != row["verdict"]:
            lines.append(f"verdict {row['verdict']} -> {ended.verdict}")
        expected = {(a["kind"], a["target"]) for a in row["executed_actions"]}
        if gained := sorted(ended.executed - expected):
            lines.append(f"now executes {gained}")
        if lost := sorted(expected - ended.executed):
            lines.append(f"no longer executes {lost}")
        if ended.approvals != row["approvals_requested"]:
            lines.append(f"approval requests {row['approvals_requested']} -> {ended.approvals}")
        if lines:
            found[rid] = lines
    return found


def report(found: dict[str, list[str]]) -> str:
    return "\n".join(f"  {rid}: {'; '.join(lines)}" for rid, lines in sorted(found.items()))


def test_every_recorded_incident_sent_live_as_ocsf_ends_as_the_simulation_baseline(
    live_run: LiveRun, baseline: dict[str, dict[str, Any]], corpus: dict[str, LoadedIncident]
) -> None:
    channel = live_run.channels[Shape.OCSF]
    assert sorted(corpus) == sorted(baseline), "the corpus and its baseline list other incidents"
    assert channel.refused == [], "\n".join(channel.refused)
    assert channel.incidents == {rid: f"live--{rid}" for rid in corpus}
    found = differences(channel, baseline, sorted(corpus))
    assert not found, (
        f"{len(found)} of {len(corpus)} incidents sent live end otherwise than "
        f"simulations/baselines/corpus.json:\n{report(found)}\n"
        f"timings {live_run.timings}\nserver log tail:\n{live_run.server_log}"
    )


def test_the_analysts_answered_every_approval_request_over_the_api(live_run: LiveRun) -> None:
    desk = live_run.desk
    assert desk.problems == [], "\n".join(desk.problems)
    assert desk.unanswered == set(), "the corpus's analysts are oracles: they always answer"
    # One count per incident: a recording re-sent in a vendor shape with the same correlation
    # joins the (closed) incident the OCSF channel opened, so two channels can name one incident.
    per_incident = {
        c.incidents[rid]: o.approvals
        for c in live_run.channels.values()
        for rid, o in c.outcomes.items()
    }
    requested = sum(per_incident.values())
    assert requested, "the corpus asks for approvals: none were requested"
    assert len(desk.decided) == requested, "every request is answered, once"


@pytest.mark.parametrize("shape", [Shape.FALCON, Shape.GRAPH])
def test_a_subset_sent_in_vendor_shapes_ends_as_the_baseline_where_nothing_read_is_lost(
    live_run: LiveRun,
    baseline: dict[str, dict[str, Any]],
    corpus: dict[str, LoadedIncident],
    shape: Shape,
) -> None:
    channel = live_run.channels[shape]
    assert channel.refused == [], "\n".join(channel.refused)
    assert sorted(channel.incidents) == sorted(VENDOR_SUBSET)
    assert all(i.startswith("live-") and i.endswith(f"--{r}") for r, i in channel.incidents.items())
    losses = {rid: vendor_losses(corpus[rid], shape) for rid in VENDOR_SUBSET}
    lossless = [rid for rid in VENDOR_SUBSET if not losses[rid]]
    assert lossless, f"no recording of the subset keeps what the agents read in {shape}"
    found = differences(channel, baseline, list(VENDOR_SUBSET))
    lossy_report = "\n".join(
        f"  {rid}: {'; '.join(found.get(rid, ['same as the baseline']))} "
        f"(loses {len(losses[rid])} field(s), e.g. {losses[rid][0]})"
        for rid in VENDOR_SUBSET
        if losses[rid]
    )
    print(f"{shape} recordings that lose fields the agents read:\n{lossy_report}")
    failed = {rid: found[rid] for rid in lossless if rid in found}
    assert not failed, (
        f"{shape}: recordings whose alerts arrive intact end otherwise than the baseline:\n"
        f"{report(failed)}\nthe lossy ones:\n{lossy_report}"
    )
    unfinished = {
        rid: o for rid, o in channel.outcomes.items() if o.status != "closed" or o.verdict is None
    }
    assert not unfinished, f"{shape}: incidents that did not close with a verdict: {unfinished}"
