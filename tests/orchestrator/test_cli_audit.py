"""`garrison audit` as an operator runs it (a real subprocess) on SQLite and PostgreSQL: verify
exits 0 with its summary, 1 naming the first bad seq of each A1 tamper (the cut tail only with the
anchor), 2 with one line for what stops it; `anchor` writes the head, `tail` shows the newest.
A real `garrison worker` anchors the head when it stops and refuses to start with an anchor others
could rewrite; the runtime every process opens anchors on its schedule."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text
from temporalio.testing import WorkflowEnvironment

from orchestrator.runtime import open_runtime
from orchestrator.settings import GarrisonSettings
from orchestrator.store import AnchorEntry, AuditAnchor, Store
from orchestrator.store.tables import STORE_TABLES
from tests.orchestrator.processes import clean_environment, wait_for
from tests.orchestrator.store.conftest import postgres_url  # noqa: F401 - a fixture
from tests.orchestrator.store.store_factories import make_event
from tests.orchestrator.store.tamper import TAMPERS, Tamper

INCIDENT = Path(__file__).parents[2] / "simulations" / "incidents" / "otrf-lsass-procdump-acct01"


def garrison(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "orchestrator.cli", *args],
        env=clean_environment() | env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    """The command's only line on stderr (and never a traceback)."""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        (tmp_path / "data").mkdir()
        return f"sqlite:///{tmp_path / 'data' / 'garrison.db'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def anchor(tmp_path: Path) -> AuditAnchor:
    return AuditAnchor(tmp_path / "anchors" / "audit-anchor.jsonl")


@pytest.fixture
def env(tmp_path: Path, db_url: str, anchor: AuditAnchor) -> dict[str, str]:
    return {
        "GARRISON_DATA_DIR": str(tmp_path / "data"),
        "GARRISON_DATABASE_URL": db_url,
        "GARRISON_AUDIT__ANCHOR": f"file:{anchor.path}",
    }


@pytest.fixture
async def store(db_url: str, anchor: AuditAnchor) -> AsyncIterator[Store]:
    store = await Store.open(db_url, anchor=anchor)
    if store.engine.dialect.name == "postgresql":
        async with store.engine.begin() as conn:
            names = ", ".join(table.name for table in STORE_TABLES)
            await conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY"))
    yield store
    await store.close()


async def _append(store: Store, count: int) -> None:
    for n in range(count):
        await store.append_audit(make_event(n))


async def cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(garrison, *args, env=env)


async def test_verify_prints_its_summary(store: Store, env: dict[str, str]) -> None:
    await _append(store, 20)
    await store.anchor_now()
    await _append(store, 2)

    result = await cli("audit", "verify", env=env)

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(
        "22 entries verified, 1 anchor matched, head seq 22; 2 entries after the newest anchor "
        "(seq 20)"
    ), result.stdout


@pytest.mark.parametrize("tamper", TAMPERS, ids=[t.name for t in TAMPERS])
async def test_verify_exits_1_naming_the_first_bad_seq(
    store: Store, env: dict[str, str], tamper: Tamper
) -> None:
    await _append(store, 20)
    await store.anchor_now()
    await tamper.apply(store.engine)

    with_anchor = await cli("audit", "verify", env=env)

    assert with_anchor.returncode == 1, with_anchor.stderr
    assert one_line(with_anchor).startswith(
        f"audit log broken at seq {tamper.first_bad_seq}: {tamper.kind}"
    )
    if tamper.kind == "truncated":  # A1: the chain alone cannot see a cut tail
        chain_only = await cli("audit", "verify", "--chain-only", env=env)
        assert chain_only.returncode == 0, chain_only.stderr
        assert chain_only.stdout.startswith("17 entries verified")


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # nothing here depends on it
async def test_verify_against_exported_anchors(
    store: Store, env: dict[str, str], tmp_path: Path, anchor: AuditAnchor
) -> None:
    await _append(store, 20)
    await store.anchor_now()
    exported = tmp_path / "exported.jsonl"
    exported.write_bytes(anchor.path.read_bytes())
    anchor.path.unlink()  # the configured anchor is gone: the export is what is left
    await TAMPERS[-1].apply(store.engine)

    result = await cli("audit", "verify", "--anchor-file", str(exported), env=env)

    assert result.returncode == 1
    assert one_line(result).startswith("audit log broken at seq 18: truncated")


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # nothing here depends on it
async def test_a_chain_no_anchor_covers_fails_unless_chain_only(
    store: Store, env: dict[str, str], anchor: AuditAnchor
) -> None:
    await _append(store, 5)  # no anchor yet: a cut tail would go unnoticed

    result = await cli("audit", "verify", env=env)
    chain_only = await cli("audit", "verify", "--chain-only", env=env)

    assert result.returncode == 1
    assert f"no anchor in anchors: file:{anchor.path} covers them" in one_line(result)
    assert chain_only.returncode == 0 and chain_only.stdout.startswith("5 entries verified")


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # nothing here depends on it
async def test_anchor_writes_the_head_and_tail_shows_the_newest(
    store: Store, env: dict[str, str], anchor: AuditAnchor
) -> None:
    await _append(store, 3)
    head = (await store.audit_entries())[-1]

    anchored = await cli("audit", "anchor", env=env)
    tail = await cli("audit", "tail", "-n", "2", "--json", env=env)
    verified = await cli("audit", "verify", env=env)

    assert anchored.returncode == 0, anchored.stderr
    assert f"anchored head seq 3 ({head.hash[:16]}) to file:{anchor.path}" in anchored.stdout
    assert [(a.seq, a.hash) for a in await anchor.entries()] == [(3, head.hash)]
    assert tail.returncode == 0, tail.stderr
    assert [entry["seq"] for entry in json.loads(tail.stdout)] == [2, 3]
    assert verified.returncode == 0 and "1 anchor matched" in verified.stdout


def test_what_stops_verify_is_one_line_and_exit_2(tmp_path: Path) -> None:
    data = tmp_path / "data"
    damaged = tmp_path / "damaged.jsonl"
    entry = AnchorEntry.model_validate({"seq": 1, "hash": "a" * 64, "at": "2024-05-01T12:00Z"})
    damaged.write_text(f"{entry.model_dump_json()}\nnot an anchor\n{entry.model_dump_json()}\n")
    base = {"GARRISON_DATA_DIR": str(data)}
    cases = [
        (base, ["--chain-only"], f"no database at {data / 'garrison.db'}"),
        (
            base | {"GARRISON_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none"},
            [],
            "database postgresql://nobody@127.0.0.1:1/none: connection failed",
        ),
        (base, ["--anchor-file", str(tmp_path / "missing.jsonl")], "missing.jsonl: no such file"),
        (base | {"GARRISON_AUDIT__ANCHOR": "s3://bucket"}, [], "GARRISON_AUDIT__ANCHOR: "),
    ]
    for env, args, message in cases:
        result = garrison("audit", "verify", *args, env=env)
        assert result.returncode == 2, (args, result.stderr)
        assert message in one_line(result)

    data.mkdir()
    Path(data / "garrison.db").touch()  # an empty SQLite file is an empty store
    for env, args, message in [
        (base, ["--anchor-file", str(damaged)], "line 2 is not an anchor entry"),
        (base | {"GARRISON_AUDIT__ANCHOR": "syslog://127.0.0.1:9"}, [], "cannot read back"),
    ]:
        result = garrison("audit", "verify", *args, env=env)
        assert result.returncode == 2, (args, result.stderr)
        assert message in one_line(result)


@pytest.mark.parametrize("problem", ["world-writable", "inside-data-dir"])
def test_worker_refuses_to_start_with_an_anchor_others_could_rewrite(
    tmp_path: Path, problem: str
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    path = tmp_path / "audit-anchor.jsonl"
    if problem == "world-writable":
        path.touch()
        path.chmod(0o666)
    else:
        path = data / "audit-anchor.jsonl"
    env = {"GARRISON_DATA_DIR": str(data), "GARRISON_AUDIT__ANCHOR": f"file:{path}"}

    result = garrison("worker", "--incidents", str(INCIDENT), env=env)

    assert result.returncode == 2
    expected = "(mode 0666): chmod 600 it" if problem == "world-writable" else "beside the database"
    assert expected in one_line(result)


@pytest.mark.temporal
async def test_a_worker_anchors_the_head_when_it_stops(
    temporal_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    data, anchor = tmp_path / "data", AuditAnchor(tmp_path / "anchors" / "audit-anchor.jsonl")
    env = clean_environment() | {
        "GARRISON_DATA_DIR": str(data),
        "GARRISON_AUDIT__ANCHOR": f"file:{anchor.path}",
        "GARRISON_AUDIT__ANCHOR_INTERVAL_S": "3600",  # only the shutdown can write it
        "GARRISON_TEMPORAL_ADDRESS": temporal_env.client.service_client.config.target_host,
        "GARRISON_TEMPORAL_TASK_QUEUE_PREFIX": f"audit-{os.getpid()}",
    }
    worker = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "orchestrator.cli", "worker", "--queues", "actions"),
        *("--incidents", str(INCIDENT)),
        env=env,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,
    )
    try:
        assert worker.stderr is not None
        await asyncio.wait_for(_line_with(worker.stderr, "worker ready"), 60)
        store = await Store.open(f"sqlite:///{data / 'garrison.db'}")
        try:
            await _append(store, 4)  # entries of another process: the worker anchors the head
        finally:
            await store.close()
        worker.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(worker.wait(), 30) == 0
    finally:
        if worker.returncode is None:
            os.killpg(worker.pid, signal.SIGKILL)
            await worker.wait()

    assert [a.seq for a in await anchor.entries()] == [4]
    modes = (anchor.path.stat().st_mode & 0o777, anchor.path.parent.stat().st_mode & 0o777)
    assert modes == (0o600, 0o700)


async def _line_with(stream: asyncio.StreamReader, text: str) -> None:
    async for line in stream:
        if text in line.decode():
            return
    raise AssertionError(f"the process ended without printing {text!r}")


@pytest.mark.temporal
async def test_the_runtime_anchors_on_its_schedule(
    temporal_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    anchor = AuditAnchor(tmp_path / "anchors" / "audit-anchor.jsonl")
    settings = GarrisonSettings.model_validate(
        {
            "data_dir": tmp_path / "data",
            "audit": {"anchor": f"file:{anchor.path}", "anchor_interval_s": 0.1},
            "temporal": {"address": temporal_env.client.service_client.config.target_host},
        }
    )
    async with open_runtime(settings, None, run_workers=False, slack=False, dispatch=False) as rt:
        await _append(rt.store, 4)
        await wait_for(lambda: _newest(anchor) == 4, 10)
        scheduled = [a.seq for a in await anchor.entries()]

    # Written by the schedule while the runtime ran (a tick between two appends may have
    # anchored an earlier head too).
    assert scheduled[-1] == 4


def _newest(anchor: AuditAnchor) -> int:
    lines = anchor.path.read_text().splitlines() if anchor.path.exists() else []
    return max((AnchorEntry.model_validate_json(line).seq for line in lines), default=0)
