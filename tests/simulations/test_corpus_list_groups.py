"""Issue 12, cause 9: `garrison corpus import-otrf DIR --rules R --list-groups` lists the alert
groups of a recording that has no labels yet (no --labels, no --out), so a labeller writes the
labels from the list rather than starting with a dummy label.

The recording and the rule are written here: a person's two `whoami` runs on one host five minutes
apart (one group of two alerts: one per process), and a SYSTEM run on another host in between (a
group of its own: SYSTEM names no one, so it joins nothing).
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.simulations.test_corpus_cli import garrison
from tests.simulations.test_sigma_engine import SYSMON, _rule, _xz

WHOAMI_RULE = "whoami_discovery"


def _event(stamp: str, host: str, user: str, pid: int) -> str:
    return json.dumps(
        {
            "Channel": SYSMON,
            "EventID": 1,
            "Hostname": f"{host}.lab.local",
            "@timestamp": stamp,
            "Image": "C:\\Windows\\System32\\whoami.exe",
            "CommandLine": "whoami /all",
            "User": user,
            "ProcessId": str(pid),
        }
    )


def _recording(folder: Path) -> Path:
    _xz(
        folder / "host" / "events.json.xz",
        [
            _event("2024-03-01T10:00:00.000Z", "WS1", "LAB\\ann", 101),
            _event("2024-03-01T10:05:00.000Z", "WS1", "LAB\\ann", 202),
            _event("2024-03-01T10:02:00.000Z", "SRV2", "NT AUTHORITY\\SYSTEM", 303),
        ],
    )
    (folder / "metadata.yaml").write_text("title: hand-made\n")
    return folder


def test_list_groups_of_an_unlabelled_recording(tmp_path: Path) -> None:
    recording = _recording(tmp_path / "datasets" / "REC-1")
    rules = tmp_path / "rules"
    _rule(
        rules,
        WHOAMI_RULE,
        {"product": "windows", "category": "process_creation"},
        {"selection": {"Image|endswith": "\\whoami.exe"}, "condition": "selection"},
    )
    result = garrison(
        "import-otrf", tmp_path / "datasets", "--rules", rules, "--list-groups",
        "--sigma-cache", tmp_path / "cache",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    rule_id = next(iter(rules.glob("*.yml"))).read_text().split("id: ")[1].split()[0]
    lines = [line.split(" | ") for line in result.stdout.splitlines()]
    assert lines == [
        [
            "REC-1#1",
            "2024-03-01T10:00:00Z..2024-03-01T10:05:00Z",
            "hosts WS1",
            "users lab\\ann",
            "2 alerts (2 matched events)",
            f"rules Whoami Discovery ({rule_id})",
        ],
        [
            "REC-1#2",
            "2024-03-01T10:02:00Z..2024-03-01T10:02:00Z",
            "hosts SRV2",
            "users -",
            "1 alerts (1 matched events)",
            f"rules Whoami Discovery ({rule_id})",
        ],
    ]
    assert not (tmp_path / "out").exists()
    # the recording folder itself lists the same groups
    alone = garrison(
        "import-otrf", recording, "--rules", rules, "--list-groups",
        "--sigma-cache", tmp_path / "cache",
    )  # fmt: skip
    assert alone.stdout == result.stdout


def test_import_without_labels_or_list_groups_says_what_is_missing(tmp_path: Path) -> None:
    result = garrison("import-otrf", tmp_path, "--rules", tmp_path)
    assert result.exit_code == 2
    assert "--labels and --out are required" in result.stderr
