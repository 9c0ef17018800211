"""Where the in-memory twins keep their state, and the fault knobs they honour.

A twin keeps no state of its own: every change (isolate, block, disable, ticket opened...) is
appended to a `StateJournal`, and every state read folds the journal from the start. Two twins
sharing one journal therefore behave as one vendor, and a `FileJournal` shared by several
processes lets a new worker see what a killed one did, as a real vendor's state would survive.

`TwinFaults` makes a twin misbehave as vendors do: fail transiently the first N calls of an
operation, or apply a change and never answer.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

from tools.errors import TransientToolError
from tools.results import Change


class StateChange(BaseModel):
    """One change a twin applied: `op` is the method name (`isolate_host`, `open_ticket`...)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    op: str
    target: str
    at: datetime
    detail: str = ""


class StateJournal(Protocol):
    def changes(self) -> list[StateChange]: ...

    def append(self, change: StateChange) -> None: ...


class MemoryJournal:
    """A journal for one process (tests, single-process simulations)."""

    def __init__(self) -> None:
        self._changes: list[StateChange] = []

    def changes(self) -> list[StateChange]:
        return list(self._changes)

    def append(self, change: StateChange) -> None:
        self._changes.append(change)


class FileJournal:
    """JSON lines in one file shared by processes: appended under an exclusive `flock` with
    O_APPEND, flushed and fsynced before `append` returns; re-read on every `changes()`.

    A writer killed mid-line leaves an unterminated fragment: readers skip it and the next writer
    truncates it under the lock, so one torn write never corrupts the changes around it."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)

    def append(self, change: StateChange) -> None:
        line = (change.model_dump_json() + "\n").encode()
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            size = os.fstat(fd).st_size
            complete = _complete_length(self.path, size)
            if complete != size:  # a writer died mid-line: drop its fragment
                os.ftruncate(fd, complete)
            while line:  # a regular file takes it whole; loop in case it does not
                line = line[os.write(fd, line) :]
            os.fsync(fd)
        finally:
            os.close(fd)  # closing releases the lock

    def changes(self) -> list[StateChange]:
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            return []
        with os.fdopen(fd, "rb") as file:
            fcntl.flock(file.fileno(), fcntl.LOCK_SH)
            data = file.read()
        lines = data.split(b"\n")
        # The last element is b"" after a complete line, or the fragment of a torn write.
        return [StateChange.model_validate_json(line) for line in lines[:-1] if line.strip()]


def _complete_length(path: Path, size: int, chunk: int = 65_536) -> int:
    """The length of the file up to and including its last newline."""
    with path.open("rb") as file:
        end = size
        while end > 0:
            start = max(0, end - chunk)
            file.seek(start)
            data = file.read(end - start)
            newline = data.rfind(b"\n")
            if newline >= 0:
                return start + newline + 1
            end = start
    return 0


class TwinFaults(BaseModel):
    """Faults for resilience tests. Op names are the twin method names. Call counts live in this
    object, so they are per process (a restarted worker fails its first N calls again)."""

    model_config = ConfigDict(extra="forbid")

    hang_after_apply: set[str] = Field(default_factory=set)
    fail_first: dict[str, int] = Field(default_factory=dict)
    _calls: Counter[str] = PrivateAttr(default_factory=Counter)

    @classmethod
    def from_env_string(cls, spec: str) -> TwinFaults:
        """`hang_after_apply=isolate_host,open_ticket;fail_first=block_ip:2,isolate_host`
        (a `fail_first` op without a count fails once). Raises ValueError naming the bad part."""
        hang: set[str] = set()
        fail: dict[str, int] = {}
        for part in filter(None, (p.strip() for p in spec.split(";"))):
            name, sep, values = part.partition("=")
            items = [v.strip() for v in values.split(",") if v.strip()]
            if not sep or not items:
                raise ValueError(f"twin faults: {part!r} is not <knob>=<op>[,<op>...]")
            match name.strip():
                case "hang_after_apply":
                    hang.update(items)
                case "fail_first":
                    for item in items:
                        op, _, count = item.partition(":")
                        if count and not count.strip().isdigit():
                            raise ValueError(f"twin faults: {item!r}: count must be an integer")
                        fail[op.strip()] = int(count) if count else 1
                case other:
                    raise ValueError(
                        f"twin faults: unknown knob {other!r} (hang_after_apply, fail_first)"
                    )
        return cls(hang_after_apply=hang, fail_first=fail)

    def before_call(self, op: str) -> None:
        """Raise TransientToolError while `op` has failed fewer than its first N calls."""
        budget = self.fail_first.get(op, 0)
        if self._calls[op] < budget:
            self._calls[op] += 1
            raise TransientToolError(f"{op}: injected transient failure {self._calls[op]}/{budget}")

    async def after_apply(self, op: str) -> None:
        if op in self.hang_after_apply:
            # An event never set: the change is applied and the vendor never answers.
            await asyncio.Event().wait()


class TwinRuntime:
    """What every twin shares: its journal and its faults."""

    def __init__(self, journal: StateJournal | None, faults: TwinFaults | None) -> None:
        self.journal: StateJournal = journal if journal is not None else MemoryJournal()
        self.faults = faults if faults is not None else TwinFaults()

    def call(self, op: str) -> None:
        self.faults.before_call(op)

    def changes(self, *ops: str) -> list[StateChange]:
        return [c for c in self.journal.changes() if c.op in ops]

    async def record(self, op: str, target: str, detail: str = "") -> None:
        self.journal.append(StateChange(op=op, target=target, at=datetime.now(UTC), detail=detail))
        await self.faults.after_apply(op)

    def changes_of(self, target: str, *ops: str) -> list[StateChange]:
        return [c for c in self.changes(*ops) if c.target == target]

    def latest(self, target: str, on: str, off: str) -> bool:
        """Whether the last of the `on`/`off` changes of `target` was `on`."""
        state = False
        for change in self.changes(on, off):
            if change.target == target:
                state = change.op == on
        return state

    async def flip(self, op: str, target: str, on: str, off: str, done: str) -> Change:
        """Move a two-state target (contained, blocked, disabled...) to the state `op` leads to;
        a target already there is left alone and nothing is journaled."""
        self.call(op)
        if self.latest(target, on, off) == (op == on):
            return Change(applied=False, detail=f"already {done}")
        await self.record(op, target)
        return Change(applied=True, detail=done)
