"""Where the audit chain's heads go, so that a cut or rewritten tail is detected: the anchor sinks.

A chain alone cannot reveal that its newest entries were deleted, or rewritten with every hash
recomputed; a copy of a past head `(seq, hash, at)` kept where the database's writers cannot
reach can. `AuditAnchor` appends heads to a JSONL file (created 0600 in a 0700 directory, one
fsync'd `O_APPEND` write per head, so concurrent processes' lines stay whole) and reads them back
for the verifier; `SyslogAnchor` sends them to a syslog daemon, local or remote, which Garrison
cannot read back: to verify, the operator exports them to a file (docs/operators.md).
`anchor_periodically` is the runtime's scheduled anchor: it bounds how much of a cut tail can go
unnoticed to the entries of one interval.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import stat
from collections.abc import Awaitable, Callable, Iterable, Sequence
from pathlib import Path
from typing import Protocol

from pydantic import AwareDatetime, BaseModel, ConfigDict, ValidationError

from orchestrator.settings import SyslogAnchorTarget, SyslogTransport
from orchestrator.store.records import AuditRecord

log = logging.getLogger(__name__)

# Writable by group or others: anyone but the owner could forge or erase anchors.
_SHARED_WRITE = stat.S_IWGRP | stat.S_IWOTH
# syslog facility authpriv (10) and severity info (6): the private log of security events.
_SYSLOG_PRI = 10 * 8 + 6
SYSLOG_TAG = "garrison-audit"
_SYSLOG_TIMEOUT_S = 5.0


class AnchorError(Exception):
    """An anchor cannot be written or read, or sits where it protects nothing; one line."""


class AnchorEntry(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    seq: int
    hash: str
    at: AwareDatetime


def entry_for(head: AuditRecord) -> AnchorEntry:
    return AnchorEntry(seq=head.seq, hash=head.hash, at=head.at)


class AnchorSink(Protocol):
    """A place heads are written to; `entries` reads them back, or says it cannot."""

    @property
    def description(self) -> str: ...

    async def write(self, head: AuditRecord) -> AnchorEntry: ...

    async def entries(self) -> list[AnchorEntry]: ...


class AuditAnchor:
    """An append-only JSONL file of chain heads, kept outside the database's directory."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)

    @property
    def description(self) -> str:
        return f"file:{self.path}"

    def secure(self, protected: Iterable[Path] = ()) -> None:
        """Refuse a place that defeats the anchor (inside a `protected` directory, writable by
        group or others) and create what is missing private: the directory 0700, the file 0600.
        The real path counts, so a symbolic link cannot smuggle the file back in."""
        real = self.path.expanduser().resolve()
        for directory in protected:
            inside = directory.expanduser().resolve()
            if real.is_relative_to(inside):
                raise AnchorError(
                    f"audit anchor {self.path} is inside {inside}, beside the database it "
                    "protects: anchor elsewhere (GARRISON_AUDIT__ANCHOR=file:/path)"
                )
        _secure_directory(real.parent)
        try:
            fd = os.open(real, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        except OSError as error:
            raise AnchorError(f"audit anchor {self.path}: {error.strerror}") from None
        try:
            mode = os.fstat(fd).st_mode
        finally:
            os.close(fd)
        if not stat.S_ISREG(mode):
            raise AnchorError(f"audit anchor {self.path} is not a regular file")
        if mode & _SHARED_WRITE:
            raise AnchorError(
                f"audit anchor {self.path} is writable by group or others "
                f"(mode {stat.S_IMODE(mode):04o}): chmod 600 it"
            )

    async def write(self, head: AuditRecord) -> AnchorEntry:
        entry = entry_for(head)
        try:
            await asyncio.to_thread(self._append_line, entry.model_dump_json() + "\n")
        except OSError as error:
            raise AnchorError(f"audit anchor {self.path}: {error.strerror or error}") from None
        return entry

    async def entries(self) -> list[AnchorEntry]:
        return await asyncio.to_thread(self._read)

    def _append_line(self, line: str) -> None:
        # One small O_APPEND write per head keeps concurrent writers' lines whole; created
        # private in case it was removed since `secure` (or never went through it).
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line.encode())
            os.fsync(fd)
        finally:
            os.close(fd)

    def _read(self) -> list[AnchorEntry]:
        try:
            lines = self.path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return []
        except (OSError, UnicodeDecodeError) as error:
            reason = error.strerror if isinstance(error, OSError) else "not UTF-8 text"
            raise AnchorError(f"cannot read audit anchor {self.path}: {reason}") from None
        entries: list[AnchorEntry] = []
        for number, line in enumerate(lines, start=1):
            try:
                entries.append(AnchorEntry.model_validate_json(line))
            except ValidationError:
                # A crash can leave the last line half-written; anything else is damage.
                if number != len(lines):
                    raise AnchorError(
                        f"audit anchor {self.path}: line {number} is not an anchor entry"
                    ) from None
        return entries


def _secure_directory(directory: Path) -> None:
    if not directory.exists():
        try:
            directory.mkdir(mode=0o700, parents=True)
        except OSError as error:
            raise AnchorError(
                f"cannot create the audit anchor's directory {directory}: {error.strerror}"
            ) from None
        return
    mode = directory.stat().st_mode
    if not stat.S_ISDIR(mode):
        raise AnchorError(f"the audit anchor's directory {directory} is not a directory")
    # A sticky directory (/tmp) lets nobody else remove or replace the file.
    if mode & _SHARED_WRITE and not mode & stat.S_ISVTX:
        raise AnchorError(
            f"the audit anchor's directory {directory} is writable by group or others "
            f"(mode {stat.S_IMODE(mode):04o}): chmod 700 it"
        )


class SyslogAnchor:
    """Heads sent to syslog as `<PRI>garrison-audit[<store>]: <JSON entry>` (facility authpriv):
    a write-only sink on another machine, or on this one's private log. Each head opens its own
    socket: anchors are rare, and a daemon restarted in between costs nothing."""

    def __init__(self, target: SyslogAnchorTarget, store_key: str) -> None:
        self.target = target
        self.tag = f"{SYSLOG_TAG}[{store_key}]"

    @property
    def description(self) -> str:
        return str(self.target)

    async def write(self, head: AuditRecord) -> AnchorEntry:
        entry = entry_for(head)
        message = f"<{_SYSLOG_PRI}>{self.tag}: {entry.model_dump_json()}".encode()
        try:
            await asyncio.to_thread(self._send, message)
        except OSError as error:
            raise AnchorError(
                f"audit anchor {self.description}: {error.strerror or error}"
            ) from None
        return entry

    async def entries(self) -> list[AnchorEntry]:
        raise AnchorError(
            f"the audit anchor is {self.description}, which Garrison cannot read back: export "
            f"the {self.tag} lines to a file and pass --anchor-file (docs/operators.md)"
        )

    def _send(self, message: bytes) -> None:
        target = self.target
        match target.transport:
            case SyslogTransport.UNIX:
                with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                    sock.settimeout(_SYSLOG_TIMEOUT_S)
                    sock.sendto(message, target.address)
            case SyslogTransport.UDP:
                address = (target.address, target.port)
                family = socket.getaddrinfo(*address, type=socket.SOCK_DGRAM)[0][0]
                with socket.socket(family, socket.SOCK_DGRAM) as sock:
                    sock.sendto(message, address)
            case SyslogTransport.TCP:
                address = (target.address, target.port)
                with socket.create_connection(address, timeout=_SYSLOG_TIMEOUT_S) as sock:
                    # RFC 6587 octet counting: "<length> <message>".
                    sock.sendall(str(len(message)).encode() + b" " + message)


class Anchoring:
    """When the store writes its head to a sink: every `every`-th entry (by whoever appends it),
    on demand, and, for the schedule, whenever the head moved since this process last wrote one.
    The automatic writes log a failure instead of raising it: the entry is committed by then,
    and an activity retried over a syslog outage would append it again."""

    def __init__(self, sink: AnchorSink, every: int) -> None:
        self.sink = sink
        self.every = every
        self.last_seq = 0  # the newest head this process anchored

    async def write(self, head: AuditRecord) -> AnchorEntry:
        entry = await self.sink.write(head)
        self.last_seq = head.seq
        return entry

    async def write_logged(self, head: AuditRecord) -> None:
        try:
            await self.write(head)
        except AnchorError as error:
            log.error("audit anchor not written (head seq %d): %s", head.seq, error)

    async def after_append(self, record: AuditRecord) -> None:
        if record.seq % self.every == 0:
            await self.write_logged(record)

    def moved(self, head: AuditRecord) -> bool:
        return head.seq != self.last_seq


async def after_appends(anchoring: Anchoring | None, records: Sequence[AuditRecord]) -> None:
    """What the store does once a transaction that appended `records` has committed."""
    if anchoring is not None:
        for record in records:
            await anchoring.after_append(record)


async def anchor_periodically(
    anchor_if_moved: Callable[[], Awaitable[object]], interval_s: float
) -> None:
    """Anchor the head every `interval_s` when it moved, until cancelled. A failed round is
    logged and the next tick tries again: the task outlives a database or syslog restart."""
    while True:
        await asyncio.sleep(interval_s)
        try:
            await anchor_if_moved()
        except Exception as error:  # one bad round must not end the schedule
            log.error("audit anchor not written: %s: %s", type(error).__name__, error)
