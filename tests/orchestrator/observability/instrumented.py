"""One simulated incident with every instrument on, shared by the metrics, logs and traces tests
(one run instead of three): the real vendor adapters against their emulators (every vendor call
over HTTP) on the session's Temporal dev server, with `/metrics` scraped from a real server on
the same store before and after, every logger at DEBUG in JSON into a buffer, and traces into
the SDK's in-memory exporter. Slack secrets are configured (never used: the analysts are
simulated) so that the logs can be searched for them."""

from __future__ import annotations

import io
import logging
import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from pydantic import SecretStr
from temporalio.testing import WorkflowEnvironment

from orchestrator.approvals.directory import ApproverDirectory
from orchestrator.approvals.service import ApprovalService
from orchestrator.observability import logs, tracing
from orchestrator.server.app import ServerDeps, create_app
from orchestrator.server.tokens import ApiTokens
from orchestrator.settings import GarrisonSettings, SlackSettings, TemporalSettings
from orchestrator.store.repository import Store
from simulations.loader import LoadedIncident, load_all
from simulations.runner import SimulationOptions, run_simulation
from simulations.scorer import Scorecard
from tools.emulators.serve import serve
from tools.vendors import DEFAULT_EMULATED, vendor

ROOT = Path(__file__).parents[3]
INCIDENT = ROOT / "simulations" / "incidents" / "otrf-lsass-procdump-acct01"
SIGNING_SECRET = "test-signing-secret-" + uuid.uuid4().hex
BOT_TOKEN = "xoxb-test-" + uuid.uuid4().hex


@dataclass(frozen=True)
class InstrumentedRun:
    card: Scorecard
    loaded: list[LoadedIncident]
    prefix: str  # the run's task queue prefix
    metrics_before: str
    metrics_after: str
    log_lines: list[str]
    secrets: list[str]  # every secret the run's settings and vendor adapters were given
    spans: tuple[ReadableSpan, ...]


async def instrumented_run(env: WorkflowEnvironment, tmp_path: Path) -> InstrumentedRun:
    prefix = f"o{uuid.uuid4().hex[:8]}"
    settings = GarrisonSettings(
        data_dir=tmp_path / "data",
        temporal=TemporalSettings(
            address=env.client.service_client.config.target_host, task_queue_prefix=prefix
        ),
        slack=SlackSettings(
            signing_secret=SecretStr(SIGNING_SECRET),
            bot_token=SecretStr(BOT_TOKEN),
            channel="C0SOCAPPROVALS",
        ),
    )
    emulated = {capability: vendor(name) for capability, name in DEFAULT_EMULATED.items()}
    secrets = [SIGNING_SECRET, BOT_TOKEN]
    for spec in emulated.values():  # what the adapters are configured with
        secrets += logs._secret_values(spec.emulator_settings("http://127.0.0.1:1"))
    loaded = load_all([INCIDENT]).incidents
    settings.data_dir.mkdir(parents=True)
    store = await Store.open(settings.effective_database_url)
    deps = ServerDeps(
        store=store,
        approvals=ApprovalService(env.client, store, ApproverDirectory(groups={}), "agent"),
        tokens=ApiTokens(),
    )
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    captured = io.StringIO()
    exporter = InMemorySpanExporter()
    tracing.enable(exporter)
    logs.protect(settings)  # as `settings_or_exit` does
    logs.configure("json", logging.DEBUG, captured)
    try:
        async with serve(create_app(deps)) as url, httpx.AsyncClient(base_url=url) as http:
            before = (await http.get("/metrics")).text
            card = await run_simulation(loaded, settings, SimulationOptions(emulated=emulated))
            after = (await http.get("/metrics")).text
        # A careless message that formats a secret: still hidden.
        logging.getLogger("garrison.test").warning("slack: %s", BOT_TOKEN)
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
        tracing.disable()
        await deps.aclose()
        await store.close()
    return InstrumentedRun(
        card=card,
        loaded=loaded,
        prefix=prefix,
        metrics_before=before,
        metrics_after=after,
        log_lines=captured.getvalue().splitlines(),
        secrets=secrets,
        spans=exporter.get_finished_spans(),
    )
