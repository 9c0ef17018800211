"""The Temporal frontend is a trust boundary (invariant I4, docs/security.md): whoever reaches it
can start workflows and send Updates and signals. Garrison's embedded dev server is therefore
reachable from this machine only: every socket its process listens on (the gRPC frontend, the
UI, the HTTP API, its internal services and metrics) is bound to a loopback address, never to
0.0.0.0 or a routable interface. Read from the kernel's own socket tables (`/proc`), not from the
command line Garrison meant to run."""

from __future__ import annotations

import ipaddress
import os
import socket
import sys
from pathlib import Path

import pytest

from orchestrator.temporal.embedded import EmbeddedTemporal

pytestmark = [
    pytest.mark.temporal,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/net"),
]
LISTEN = "0A"  # TCP_LISTEN in /proc/net/tcp's `st` column


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def socket_inodes(pid: int) -> set[str]:
    """The inodes of the sockets process `pid` holds open."""
    found: set[str] = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:  # closed between listing and reading
            continue
        if target.startswith("socket:["):
            found.add(target.removeprefix("socket:[").removesuffix("]"))
    return found


def _address(hex_address: str) -> tuple[ipaddress.IPv4Address | ipaddress.IPv6Address, int]:
    """`0100007F:1F91` (IPv4) or 32 hex digits (IPv6) as /proc/net writes them: host byte order
    per 32-bit word."""
    host, port = hex_address.split(":")
    raw = bytes.fromhex(host)
    words = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    address = ipaddress.IPv4Address(words) if len(raw) == 4 else ipaddress.IPv6Address(words)
    return address, int(port, 16)


def listening(pid: int) -> list[tuple[ipaddress.IPv4Address | ipaddress.IPv6Address, int]]:
    """Every (address, port) process `pid` listens on over TCP, IPv4 and IPv6."""
    inodes = socket_inodes(pid)
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        lines = Path(table).read_text().splitlines()[1:]
        for line in lines:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state == LISTEN and inode in inodes:
                found.append(_address(local))
    return found


async def test_the_embedded_temporal_listens_on_loopback_only(tmp_path: Path) -> None:
    server = EmbeddedTemporal(tmp_path, port=free_port(), ui_port=free_port())
    async with server:
        process = server._process  # pyright: ignore[reportPrivateUsage]
        assert process is not None, "the test must own the server it inspects"
        sockets = listening(process.pid)
        frontend = int(server.address.rsplit(":", 1)[1])
        assert frontend in {port for _, port in sockets}, sockets
        assert server.ui_url is not None
        assert int(server.ui_url.rsplit(":", 1)[1]) in {port for _, port in sockets}
        exposed = [(str(a), p) for a, p in sockets if not a.is_loopback]
        assert exposed == [], f"listening beyond loopback: {exposed}"
