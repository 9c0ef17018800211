"""The chaos run's deployment (`bench/chaos.py`), every process real and killable: a Temporal dev
server of the run's own (`temporal_server.py`), `garrison emulate` serving CrowdStrike, PAN-OS,
Okta and Jira seeded from the replayed recordings (their `/_ledger` and `/_faults`),
`garrison server --no-workers` ingesting, and `garrison worker` processes using the vendor
adapters against the emulators, all on one store: a SQLite file, or a PostgreSQL database created
for the run at 127.0.0.1:5432 and dropped after it.

`ChaosStack` is the scenarios' `ScenarioStack` (`tests/scenarios/stack.py`: process groups, logs,
tokens, the short-tier policy) with production workers instead of twin-backed ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
from psycopg import sql

from orchestrator.settings import GarrisonSettings, TemporalSettings
from tests.scenarios.stack import ROOT, ScenarioStack, StackConfig

VENDORS = ("crowdstrike", "panos", "okta", "jira")
PG_HOST = "127.0.0.1:5432"
PG_USERS = ("postgres", "root")
PG_ADMIN_DB = "test"
CHAOS_APP = "garrison-chaos"  # the chaos script's own PostgreSQL sessions, never terminated
EMULATE_STARTUP_S = 120.0


@dataclass(frozen=True)
class Emulators:
    """The `garrison emulate` process and what its `--write-json` file says."""

    process: subprocess.Popen[bytes]
    env: dict[str, str]  # GARRISON_* pointing the adapters at the emulators
    urls: dict[str, str]  # vendor -> base URL (its `/_ledger` and `/_faults` beside)


async def start_emulators(folder: Path, recordings: list[Path]) -> Emulators:
    """`garrison emulate` for the four vendors, seeded from the recordings, on free ports."""
    described = folder / "emulators.json"
    args = [sys.executable, "-m", "orchestrator.cli", "emulate", *VENDORS, "--port", "0"]
    for path in recordings:
        args += ["--incident", str(path)]
    args += ["--write-json", str(described)]
    with (folder / "emulate.log").open("ab") as sink:
        # A fixed argv, no shell; Popen so that stopping it needs no event loop.
        process = subprocess.Popen(  # noqa: S603, ASYNC220
            args, cwd=ROOT, env=_clean_env(), stdout=sink, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    deadline = time.monotonic() + EMULATE_STARTUP_S
    while not described.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            log = (folder / "emulate.log").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"garrison emulate did not start:\n{log}")
        await asyncio.sleep(0.2)
    document = json.loads(described.read_text(encoding="utf-8"))
    urls = {v["vendor"]: v["base_url"] for v in document["vendors"]}
    return Emulators(process, {str(k): str(v) for k, v in document["env"].items()}, urls)


async def ledger(base_url: str) -> dict[str, Any]:
    """An emulator's `/_ledger` (writes only: the transitions and the requests that made them)."""
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:
        answer = await http.get("/_ledger", params={"writes": "1"})
        answer.raise_for_status()
        return answer.json()


async def jira_comments(
    base_url: str, env: dict[str, str], keys: list[str]
) -> dict[str, list[str]]:
    """Every comment (ADF flattened to its text) of each Jira issue, read through Jira's API."""
    auth = (env["GARRISON_JIRA_EMAIL"], env["GARRISON_JIRA_API_TOKEN"])
    found: dict[str, list[str]] = {}
    async with httpx.AsyncClient(base_url=base_url, auth=auth, timeout=30) as http:
        for key in keys:
            texts: list[str] = []
            start = 0
            while True:
                answer = await http.get(
                    f"/rest/api/3/issue/{key}/comment",
                    params={"startAt": start, "maxResults": 100},
                )
                answer.raise_for_status()
                page = answer.json()
                texts += [_adf_text(c.get("body")) for c in page["comments"]]
                start += len(page["comments"])
                if not page["comments"] or start >= page["total"]:
                    break
            found[key] = texts
    return found


def _clean_env() -> dict[str, str]:
    """This environment without a developer's own GARRISON_* settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GARRISON_")}
    return env | {"PYTHONPATH": str(ROOT)}


def _adf_text(node: object) -> str:
    if isinstance(node, dict):
        own = str(node.get("text", "")) if node.get("type") == "text" else ""
        return own + "".join(_adf_text(c) for c in node.get("content") or [])
    if isinstance(node, list):
        return "".join(_adf_text(c) for c in node)
    return str(node or "")


# -- the store's database ---------------------------------------------------------------------


def _admin() -> tuple[psycopg.Connection[Any], str]:
    errors: list[str] = []
    for user in PG_USERS:
        try:
            url = f"postgresql://{user}@{PG_HOST}/{PG_ADMIN_DB}?application_name={CHAOS_APP}"
            return psycopg.connect(url, autocommit=True), user
        except psycopg.OperationalError as error:
            errors.append(f"{user}: {error}")
    raise RuntimeError(f"PostgreSQL not reachable on {PG_HOST}: {'; '.join(errors)}")


@contextlib.contextmanager
def fresh_postgres() -> Iterator[str]:
    """A database of the run's own; its URL. Dropped (its sessions too) on exit."""
    admin, user = _admin()
    name = f"garrison_chaos_{uuid.uuid4().hex[:10]}"
    admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield f"postgresql://{user}@{PG_HOST}/{name}"
    finally:
        admin.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
        admin.close()


def terminate_backends(database_url: str) -> dict[str, int]:
    """`pg_terminate_backend` every session of the store's database but the script's own: the
    writers' connections cut, mid-transaction for those in one, as a failover or an
    administrator would. How many were cut, by their state then (`active`, `idle in
    transaction`: mid-write; `idle`: pooled)."""
    name = database_url.rsplit("/", 1)[1].split("?")[0]
    admin, _ = _admin()
    try:
        rows = admin.execute(
            "SELECT coalesce(state, 'unknown'), pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = %s AND pid <> pg_backend_pid() AND application_name <> %s",
            (name, CHAOS_APP),
        ).fetchall()
    finally:
        admin.close()
    return dict(Counter(str(state) for state, done in rows if done))


# -- the Garrison processes ---------------------------------------------------------------------


class ChaosStack(ScenarioStack):
    """`ScenarioStack` with `garrison worker` processes on the vendor adapters (the emulators),
    and the store on `database_url` when given (else SQLite in the data directory)."""

    def __init__(
        self, config: StackConfig, vendor_env: dict[str, str], database_url: str | None
    ) -> None:
        super().__init__(config)
        self.vendor_env = vendor_env
        self.database_url = database_url

    def env(self) -> dict[str, str]:
        extra = dict(self.vendor_env)
        if self.database_url is not None:
            extra["GARRISON_DATABASE_URL"] = self.database_url
        return super().env() | extra

    def settings(self) -> GarrisonSettings:
        return GarrisonSettings(
            data_dir=self.data_dir,
            database_url=self.database_url,
            temporal=TemporalSettings(
                address=self.config.temporal_address, task_queue_prefix=self.config.scope
            ),
        )

    async def start_worker(self, name: str, queues: str = "triage,agents,actions") -> None:
        """`garrison worker` on the configured vendors; returns once it prints `worker ready`
        (RuntimeError if it exits first)."""
        log = self.log(name)
        mark = log.stat().st_size if log.exists() else 0
        self._spawn(name, ["orchestrator.cli", "worker", "--queues", queues], {})

        async def ready() -> bool:
            with log.open("rb") as text:
                text.seek(mark)
                return b"worker ready" in text.read()

        await self._wait(name, ready, what=f"{name} to be ready")

    def alive(self, name: str) -> bool:
        process = self.processes.get(name)
        return process is not None and process.poll() is None
