"""The state journal: two FileJournal instances on one file behave as two processes would, and a
subprocess appending while the parent appends leaves every line intact."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from tools.journal import FileJournal, MemoryJournal, StateChange

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def change(op: str, target: str, detail: str = "") -> StateChange:
    return StateChange(op=op, target=target, at=T0, detail=detail)


def test_memory_journal_keeps_changes_in_order() -> None:
    journal = MemoryJournal()
    journal.append(change("isolate_host", "PRD01"))
    journal.append(change("release_host", "PRD01"))
    assert [c.op for c in journal.changes()] == ["isolate_host", "release_host"]


def test_file_journal_starts_empty_without_a_file(tmp_path: Path) -> None:
    assert FileJournal(tmp_path / "none.jsonl").changes() == []


def test_two_file_journals_on_one_file_see_each_others_changes(tmp_path: Path) -> None:
    path = tmp_path / "incident.jsonl"
    first, second = FileJournal(path), FileJournal(path)
    first.append(change("isolate_host", "PRD01"))
    assert second.changes() == [change("isolate_host", "PRD01")]
    second.append(change("block_ip", "203.0.113.7", 'comment with "quotes"\nand a newline'))
    assert first.changes() == second.changes()
    assert [c.op for c in first.changes()] == ["isolate_host", "block_ip"]
    assert first.changes()[1].detail == 'comment with "quotes"\nand a newline'


def test_a_torn_last_line_is_skipped_and_the_next_append_starts_afresh(tmp_path: Path) -> None:
    path = tmp_path / "incident.jsonl"
    journal = FileJournal(path)
    journal.append(change("isolate_host", "PRD01"))
    with path.open("ab") as file:  # a writer killed mid-line
        file.write(b'{"op": "block_ip", "tar')
    assert journal.changes() == [change("isolate_host", "PRD01")]
    FileJournal(path).append(change("disable_account", "pandalab\\pedro.gustavo"))
    assert [c.op for c in journal.changes()] == ["isolate_host", "disable_account"]


_CHILD = """
import sys
from datetime import UTC, datetime
from tools.journal import FileJournal, StateChange
journal = FileJournal(sys.argv[1])
for i in range(int(sys.argv[2])):
    journal.append(StateChange(op="child", target=str(i), at=datetime.now(UTC), detail="x" * 5000))
"""


def test_a_subprocess_appending_concurrently_keeps_every_line_intact(tmp_path: Path) -> None:
    path = tmp_path / "incident.jsonl"
    count = 200
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(path), str(count)], cwd=Path(__file__).parents[2]
    )
    parent = FileJournal(path)
    for i in range(count):
        parent.append(change("parent", str(i), "y" * 5000))
    assert child.wait(timeout=60) == 0

    changes = FileJournal(path).changes()  # parses every line, or raises
    assert len(path.read_bytes().splitlines()) == 2 * count
    for op in ("parent", "child"):
        assert [c.target for c in changes if c.op == op] == [str(i) for i in range(count)]
