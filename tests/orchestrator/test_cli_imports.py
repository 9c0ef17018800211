"""The command line stays light: `garrison --help` and `garrison approvals list` (a store read)
import none of LangGraph, LangChain, pySigma, the agents or the playbooks, nor Temporal's worker
and its workflow sandbox, nor the operators' instruments (Prometheus, OpenTelemetry). Each runs
in a fresh interpreter that prints its modules at exit."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = (
    *("langgraph", "langchain", "langchain_core", "sigma", "agents", "playbooks"),
    *("prometheus_client", "opentelemetry"),
)
SANDBOX = "temporalio.worker"

# Runs `garrison ARGS` in-process and, at exit, writes the names of the loaded modules to stderr.
PROBE = """
import atexit, json, sys
atexit.register(lambda: print("MODULES=" + json.dumps(sorted(sys.modules)), file=sys.stderr))
sys.argv = ["garrison", *sys.argv[1:]]
from orchestrator.cli import main
main()
"""


def loaded_modules(*args: str, data_dir: Path) -> tuple[int, str, set[str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GARRISON_")}
    result = subprocess.run(
        [sys.executable, "-c", PROBE, *args],
        env=env | {"GARRISON_DATA_DIR": str(data_dir)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    line = next(x for x in result.stderr.splitlines() if x.startswith("MODULES="))
    return result.returncode, result.stdout, set(json.loads(line.removeprefix("MODULES=")))


def heavy(modules: set[str]) -> list[str]:
    return sorted(
        m
        for m in modules
        if m.split(".")[0] in HEAVY or m == SANDBOX or m.startswith(f"{SANDBOX}.")
    )


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--help"], "approvals"),
        (["approvals", "list"], "deadline"),
        (["worker", "--help"], "--queues"),
        (["server", "--help"], "--no-workers"),
        (["playbook", "--help"], "dry-run"),
        (["playbook", "validate", "--help"], "checkpointable"),
    ],
)
def test_cli_imports_no_heavy_package_for_help_and_listings(
    args: list[str], expected: str, tmp_path: Path
) -> None:
    code, stdout, modules = loaded_modules(*args, data_dir=tmp_path / "data")

    assert code == 0
    assert expected in stdout
    assert "typer" in modules  # the probe saw the command line's modules at all
    assert heavy(modules) == []
