"""The embedded Temporal on a real dev server: start, reuse, stop, port choice, time skipping."""

from __future__ import annotations

import asyncio
import socket
import sqlite3
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from uuid import uuid4

import pytest
from temporalio import workflow
from temporalio.testing import TimeSkipper
from temporalio.worker import Worker

from orchestrator.settings import GarrisonSettings, TemporalSettings
from orchestrator.temporal.client import Role, connect, task_queue, temporal_client
from orchestrator.temporal.embedded import (
    EmbeddedTemporal,
    EmbeddedTemporalError,
    running_address,
)

pytestmark = pytest.mark.temporal


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def embedded(data_dir: Path, port: int | None = None) -> EmbeddedTemporal:
    return EmbeddedTemporal(data_dir, port=port or free_port(), ui_port=free_port())


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A port held by a plain TCP listener that never speaks gRPC."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


async def test_start_serves_clients_from_a_wal_sqlite_file(tmp_path: Path) -> None:
    async with embedded(tmp_path) as server:
        assert server.started
        client = await connect(TemporalSettings(), server.address)
        assert [execution async for execution in client.list_workflows()] == []

        with sqlite3.connect(f"file:{server.db_path}?mode=ro", uri=True) as db:
            (journal_mode,) = db.execute("PRAGMA journal_mode").fetchone()
        assert journal_mode == "wal"
        assert server.ui_url is not None
        assert listening(int(server.ui_url.rsplit(":", 1)[1]))
        assert server.state_path.exists()


async def test_second_instance_reuses_the_first_and_leaves_it_running(tmp_path: Path) -> None:
    first = await embedded(tmp_path).start()
    port = int(first.address.rsplit(":", 1)[1])
    try:
        # A different configured port: the state file, not the port, finds the first server.
        async with embedded(tmp_path) as second:
            assert not second.started
            assert second.address == first.address
            assert second.ui_url == first.ui_url
        await connect(TemporalSettings(), first.address)  # still answering
    finally:
        await first.stop()
    assert not listening(port)
    assert not first.state_path.exists()


async def test_concurrent_starts_on_one_data_dir_share_one_server(tmp_path: Path) -> None:
    one, two = await asyncio.gather(embedded(tmp_path).start(), embedded(tmp_path).start())
    try:
        assert sorted([one.started, two.started]) == [False, True]
        assert one.address == two.address
    finally:
        await one.stop()
        await two.stop()


async def test_running_address_finds_the_server_without_starting_one(tmp_path: Path) -> None:
    settings = GarrisonSettings(
        data_dir=tmp_path, temporal=TemporalSettings(embedded_port=free_port())
    )
    assert await running_address(settings) is None

    async with embedded(tmp_path) as server:
        assert await running_address(settings) == server.address
    assert await running_address(settings) is None


async def test_another_data_directorys_temporal_is_left_alone(tmp_path: Path) -> None:
    # Two data directories (two simulations, say) must not share task queues nor stop each
    # other's server: the second starts its own on a free port.
    async with embedded(tmp_path / "one") as first:
        port = int(first.address.rsplit(":", 1)[1])
        async with embedded(tmp_path / "two", port=port) as second:
            assert second.started
            assert second.address != first.address
        assert listening(port)


async def test_busy_port_that_is_not_temporal_is_replaced_by_a_free_one(
    tmp_path: Path, busy_port: int
) -> None:
    async with embedded(tmp_path, port=busy_port) as server:
        assert server.started
        assert server.address != f"127.0.0.1:{busy_port}"
        await connect(TemporalSettings(), server.address)


async def test_a_port_taken_between_the_check_and_the_launch_is_replaced(
    tmp_path: Path, busy_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two simulations starting at once on two data directories: both find the default port free,
    # one takes it, the other's server exits ("address already in use"). It starts again on a
    # free port rather than failing the run.
    import orchestrator.temporal.embedded as module

    checks = iter([True])  # the first check (before the launch) sees the port free
    real = module._port_free  # pyright: ignore[reportPrivateUsage]
    monkeypatch.setattr(module, "_port_free", lambda port: next(checks, None) or real(port))
    async with embedded(tmp_path, port=busy_port) as server:
        assert server.started
        assert server.address != f"127.0.0.1:{busy_port}"
        await connect(TemporalSettings(), server.address)


async def test_failed_start_points_at_the_log_file(tmp_path: Path) -> None:
    fake = tmp_path / "temporal"
    fake.write_text("#!/bin/sh\necho 'boom: cannot open database' >&2\nexit 3\n")
    fake.chmod(0o755)
    server = EmbeddedTemporal(tmp_path / "data", port=free_port(), binary=fake)

    with pytest.raises(EmbeddedTemporalError) as error:
        await server.start()

    assert str(server.log_path) in str(error.value)
    assert "boom: cannot open database" in str(error.value)
    assert not server.state_path.exists()


async def test_temporal_client_runs_the_embedded_server_without_an_address(
    tmp_path: Path,
) -> None:
    settings = GarrisonSettings(
        data_dir=tmp_path,
        temporal=TemporalSettings(
            address=None, embedded_port=free_port(), embedded_ui_port=free_port()
        ),
    )
    async with temporal_client(settings) as (client, server):
        assert server is not None and server.started
        assert client.namespace == "default"
        port = int(server.address.rsplit(":", 1)[1])
    assert not listening(port)


@workflow.defn
class AwaitApproval:
    """Waits up to 30 minutes for an approval that never comes."""

    def __init__(self) -> None:
        self.approved = False

    @workflow.run
    async def run(self) -> str:
        try:
            await workflow.wait_condition(lambda: self.approved, timeout=timedelta(minutes=30))
        except TimeoutError:
            return "timed out"
        return "approved"

    @workflow.signal
    def approve(self) -> None:
        self.approved = True


async def test_time_skipping_fast_forwards_a_30_minute_wait(tmp_path: Path) -> None:
    settings = TemporalSettings()
    async with embedded(tmp_path) as server:
        client = await connect(settings, server.address)
        queue = task_queue(settings, Role.TRIAGE)
        async with Worker(client, task_queue=queue, workflows=[AwaitApproval]):
            handle = await client.start_workflow(
                AwaitApproval.run, id=f"approval-{uuid4()}", task_queue=queue
            )
            began = time.monotonic()
            # Returns False here: the workflow ends (at 30 min) before the 31 min are used up.
            await TimeSkipper(client).fast_forward(handle, timedelta(minutes=31))
            result = await asyncio.wait_for(handle.result(), timeout=10)
            elapsed = time.monotonic() - began

    assert result == "timed out"
    assert elapsed < 10
