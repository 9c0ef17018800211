"""The body cap bounds a real server process's memory: unauthenticated 20 MB bodies, declared or
chunked, do not raise its peak RSS by more than a few MB (before the cap, four 100 MB bodies took
`garrison server` from 192 MB to 942 MB). The server is `bench.app_server`, the same app over
a SQLite store in a process of its own, so its memory is its own."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from bench.server import free_port
from orchestrator.server.tokens import digest

ROOT = Path(__file__).parents[3]
BODY = 20 * 1024 * 1024
pytestmark = pytest.mark.slow


def peak_rss_kb(pid: int) -> int:
    """The process's peak resident set size (VmHWM): what a buffered body would have raised."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM in /proc")


@contextlib.contextmanager
def app_server(tmp_path: Path, port: int) -> Iterator[subprocess.Popen[bytes]]:
    tokens = tmp_path / "tokens.yaml"
    tokens.write_text(yaml.safe_dump({"tokens": {"a": digest(secrets.token_hex(8))}}))
    command = [
        sys.executable, "-m", "bench.app_server", "--port", str(port),
        "--data-dir", str(tmp_path / "data"), "--tokens", str(tokens),
    ]  # fmt: skip
    process = subprocess.Popen(command, cwd=ROOT, stderr=subprocess.DEVNULL)
    try:
        yield process
    finally:
        process.terminate()
        process.wait(timeout=30)


async def healthy(url: str) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=2) as http:
        for _ in range(300):
            with contextlib.suppress(httpx.TransportError):
                if (await http.get("/healthz")).status_code == 200:
                    return
            await asyncio.sleep(0.1)
    raise AssertionError("the server did not start")


async def push(port: int, path: str, *, chunked: bool) -> bytes:
    """Send a 20 MB body as fast as the server takes it; its answer (or b"" after a reset)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    length = "transfer-encoding: chunked" if chunked else f"content-length: {BODY}"
    writer.write(f"POST {path} HTTP/1.1\r\nhost: x\r\n{length}\r\n\r\n".encode())
    block = b"{" * 262_144
    framed = f"{len(block):x}\r\n".encode() + block + b"\r\n" if chunked else block
    with contextlib.suppress(ConnectionError):
        for _ in range(BODY // len(block)):
            writer.write(framed)
            await writer.drain()
        writer.write(b"0\r\n\r\n" if chunked else b"")
        await writer.drain()
    try:
        answer = await asyncio.wait_for(reader.read(200), 10)
    except (ConnectionError, TimeoutError):
        answer = b""
    writer.close()
    return answer


async def test_unauthenticated_20_mb_bodies_leave_the_servers_memory_bounded(
    tmp_path: Path,
) -> None:
    port = free_port()
    with app_server(tmp_path, port) as process:
        await healthy(f"http://127.0.0.1:{port}")
        before = peak_rss_kb(process.pid)
        answers = []
        for path in ("/api/approvals/apr-0123456789abcdef/decision", "/api/alerts"):
            for chunked in (False, True, False, True):
                answers.append(await push(port, path, chunked=chunked))
        growth_mb = (peak_rss_kb(process.pid) - before) / 1024
        assert process.poll() is None
    # Every answer that arrived before the server closed the connection is a 413, or a 401 where
    # the route checks the token before it reads the body (`/api/alerts`).
    refused = (b"HTTP/1.1 413", b"HTTP/1.1 401")
    assert all(a.startswith(refused) for a in answers if a), answers
    assert any(answers)
    print(f"peak RSS growth: {growth_mb:.1f} MB")
    assert growth_mb < 16, f"peak RSS grew {growth_mb:.1f} MB over 8 bodies of 20 MB"
