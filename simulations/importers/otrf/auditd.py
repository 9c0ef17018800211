"""Linux audit logs (`auditd`'s text records) as events the Sigma rules and the importer read.

A record is one line, `[node=HOST ]type=T msg=audit(EPOCH:SERIAL): key=value ...`; the records of
one kernel event share the serial and come together (SYSCALL, EXECVE, CWD, PATH..., PROCTITLE).
Each line stays one event (its line number is its key, as for the other shapes): `type` and every
field, string values unquoted and hex-encoded ones (`a1=2D6C61`, `proctitle=...`) decoded, plus
`raw_line`, the line as written, for the rules' keyword searches. SigmaHQ's Linux
`process_creation` rules read Sysmon-for-Linux names, so the EXECVE record of a successful exec
also carries them from its event's other records: `Image` (the SYSCALL's `exe`), `CommandLine`
(the arguments), `ProcessId`, `ParentProcessId`, `CurrentDirectory` (CWD) and `User` (the name
`auditd` writes in enriched logs, `AUID=`/`UID=`; raw logs carry only numbers, and a number
names no one). `host` is the `node=` prefix's first label, absent from logs written without it.
"""

from __future__ import annotations

import lzma
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

Event = dict[str, object]
SOURCE = "auditd"
_HEADER = re.compile(
    r"^(?:node=(?P<node>\S+) )?type=(?P<type>\S+) "
    r"msg=audit\((?P<epoch>[\d.]+):(?P<serial>\d+)\):\s?"
)
_FIELD = re.compile(r'(?P<key>[A-Za-z0-9_]+)=(?P<value>"[^"]*"|\S*)')
_HEX = re.compile(r"^(?:[0-9A-F]{2})+$")
_ARG = re.compile(r"^a\d+$")
HEX_FIELDS = {"proctitle"}  # besides the EXECVE arguments: fields auditd writes hex-encoded


def is_audit_log(path: Path) -> bool:
    """Text audit logs are recorded as `host/*.log.xz` beside the JSON event files."""
    return path.name.endswith(".log.xz")


def stream_audit(path: Path) -> Iterator[tuple[int, Event]]:
    """(0-based line, event) per audit record; a kernel event's records are read together."""
    pending: list[tuple[int, Event]] = []
    with lzma.open(path, "rt", encoding="utf-8", errors="replace") as lines:
        for row, line in enumerate(lines):
            record = parse_record(line.rstrip("\n"))
            if record is None:
                continue
            if pending and pending[0][1]["serial"] != record["serial"]:
                yield from _with_process(pending)
                pending = []
            pending.append((row, record))
    yield from _with_process(pending)


def parse_record(line: str) -> Event | None:
    """One audit record as a flat event; None for a line that is not one."""
    header = _HEADER.match(line)
    if header is None:
        return None
    kind = header["type"]
    moment = datetime.fromtimestamp(float(header["epoch"]), UTC)
    node = header["node"]
    event: Event = {
        "@timestamp": moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z",
        "hostname": node,
        "host": node.split(".", 1)[0].upper() if node else None,
        "event_source": SOURCE,
        "EventID": None,
        "type": kind,
        "serial": header["serial"],
        "raw_line": line,
    }
    for found in _FIELD.finditer(line[header.end() :]):
        key, value = found["key"], found["value"]
        if key in event:
            continue
        event[key] = _decode(key, value, kind)
    return event


def _decode(key: str, value: str, kind: str) -> str:
    if value.startswith('"') and value.endswith('"') and len(value) >= 2:
        return value[1:-1]
    hexed = (kind == "EXECVE" and _ARG.match(key)) or key in HEX_FIELDS
    if hexed and _HEX.match(value):
        return bytes.fromhex(value).decode("utf-8", "replace").replace("\0", " ").strip()
    return value


def _with_process(records: list[tuple[int, Event]]) -> Iterator[tuple[int, Event]]:
    """The records of one kernel event, the EXECVE one with the process it started."""
    by_type = {str(r["type"]): r for _, r in records}
    syscall, execve = by_type.get("SYSCALL"), by_type.get("EXECVE")
    if execve is not None and syscall is not None and syscall.get("success") != "no":
        args = sorted((k for k in execve if _ARG.match(k)), key=lambda k: int(k[1:]))
        process: Event = {
            "Image": syscall.get("exe"),
            "CommandLine": " ".join(str(execve[k]) for k in args),
            "ProcessId": syscall.get("pid"),
            "ParentProcessId": syscall.get("ppid"),
            "CurrentDirectory": by_type.get("CWD", {}).get("cwd"),
            "User": syscall.get("AUID") or syscall.get("UID"),
        }
        execve.update({k: v for k, v in process.items() if v is not None})
    yield from records
