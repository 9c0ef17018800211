"""`garrison tools list|check|call` and `garrison emulate`, as an operator runs them: a real
`garrison emulate` process serves CrowdStrike's API seeded from a recorded incident, and the
CLI's adapter talks to it with the credentials the emulator printed."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
INCIDENT = ROOT / "simulations" / "incidents" / "otrf-lsass-comsvcs-prd01"


def garrison(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("GARRISON_")}
    return subprocess.run(
        [sys.executable, "-m", "orchestrator.cli", *args],
        env=base | env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def falcon() -> Iterator[dict[str, str]]:
    """`garrison emulate crowdstrike` in its own process; yields the variables it printed."""
    port = _free_port()
    base = {k: v for k, v in os.environ.items() if not k.startswith("GARRISON_")}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "orchestrator.cli",
            "emulate",
            "crowdstrike",
            "--port",
            str(port),
            "--incident",
            str(INCIDENT),
        ],
        env=base,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stderr is not None
        exports: dict[str, str] = {}
        while "GARRISON_CROWDSTRIKE_CLIENT_SECRET" not in exports:
            line = process.stderr.readline()
            assert line, "the emulator stopped before printing its settings"
            if line.startswith("export "):
                name, _, value = line.removeprefix("export ").strip().partition("=")
                exports[name] = value
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.1)
        yield exports
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_tools_list_says_what_is_configured(falcon: dict[str, str]) -> None:
    listed = garrison("tools", "list", "--json", env=falcon)
    assert listed.returncode == 0, listed.stderr
    rows = {row["vendor"]: row for row in json.loads(listed.stdout)}
    assert set(rows) >= {
        "crowdstrike",
        "defender",
        "panos",
        "fortigate",
        "okta",
        "entra",
        "jira",
        "servicenow",
        "virustotal",
    }
    assert rows["crowdstrike"]["configured"] is True
    assert rows["defender"]["configured"] is False
    assert rows["crowdstrike"]["capability"] == "edr"


def test_tools_check_tests_credentials(falcon: dict[str, str]) -> None:
    ok = garrison("tools", "check", env=falcon)
    assert ok.returncode == 0, ok.stderr
    assert "crowdstrike: ok" in ok.stdout
    wrong = garrison("tools", "check", env=falcon | {"GARRISON_CROWDSTRIKE_CLIENT_SECRET": "x"})
    assert wrong.returncode == 1
    assert "credentials refused" in wrong.stderr
    assert "Traceback" not in wrong.stderr


def test_tools_call_runs_one_operation_idempotently(falcon: dict[str, str]) -> None:
    first = garrison("tools", "call", "crowdstrike", "isolate_host", "PRD01", "--json", env=falcon)
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["applied"] is True
    again = garrison("tools", "call", "crowdstrike", "isolate_host", "PRD01", "--json", env=falcon)
    assert json.loads(again.stdout)["applied"] is False
    host = garrison("tools", "call", "crowdstrike", "find_host", "PRD01", "--json", env=falcon)
    assert json.loads(host.stdout)["contained"] is True


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["tools", "call", "crowdstrike", "nuke", "PRD01"], "unknown operation"),
        (["tools", "call", "acme", "isolate_host", "PRD01"], "unknown vendor"),
        (["tools", "call", "crowdstrike", "kill_process", "PRD01", "abc"], "not an integer"),
        (["tools", "call", "defender", "isolate_host", "PRD01"], "GARRISON_DEFENDER_"),
        (["emulate", "crowdstrike", "--fault", "explode=1"], "unknown knob"),
    ],
)
def test_tools_refuse_bad_input_with_one_line(
    falcon: dict[str, str], args: list[str], needle: str
) -> None:
    result = garrison(*args, env=falcon)
    assert result.returncode == 2
    assert needle in result.stderr
    assert "Traceback" not in result.stderr
