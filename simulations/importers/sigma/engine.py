"""Compiled Sigma rules evaluated over one OTRF recording with SQLite.

The recording is streamed, never held: host and cloud files through `events.stream` (the three
event shapes flattened by `normalise`), Zeek logs (`network/*.log.xz`, TSV with a `#fields` header
or JSON lines) through `zeek_stream`, in batches into a table of a private on-disk SQLite database
(deleted on close). The table has `_source` (file name) and `_line` (0-based line) and one
`TEXT COLLATE NOCASE` column per field name, added as names appear; SQLite names are
case-insensitive, so the first spelling of a name wins. Field names are the Sysmon/Windows event
names the pipelines expect (`Image`, `CommandLine`, `TargetObject`, `EventID`, `Channel`...), plus
two aliases for winlogbeat and NXLog records (`Channel` from `log_name`, `Provider_Name` from
`source_name`/`SourceName`); nested objects become dotted names (`user.name`), as Zeek's own
(`id.orig_h`). A rule runs only where its log source is: Windows rules when the recording has
events of the channel the pipelines map the rule to, Zeek rules over the logs of their service,
Linux `auditd` and `process_creation` rules over the files of Linux audit records
(`host/*.log.xz`, read by `otrf.auditd`); other products (cloud...) are not evaluated.
"""

from __future__ import annotations

import functools
import json
import lzma
import re
import sqlite3
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sigma.pipelines.common import windows_logsource_mapping
from sigma.pipelines.sysmon.sysmon import sysmon_generic_logsource_eventid_mapping
from sigma.pipelines.windows.windows import windows_generic_category_channel_mapping

from simulations.importers.otrf.alerts import SigmaHit
from simulations.importers.otrf.auditd import SOURCE as AUDIT_SOURCE
from simulations.importers.otrf.events import event_files, stream
from simulations.importers.sigma.rules import CompiledRule, LogSource

BATCH = 2000  # rows per insert: bounded memory whatever the file size
RESERVED = {"_source", "_line"}
ALIASES = {  # column: fields it is read from when the event lacks it, in order
    "Channel": ("log_name",),
    "Provider_Name": ("source_name", "SourceName"),
}
ZEEK_UNSET, ZEEK_EMPTY = "-", "(empty)"


@dataclass(frozen=True)
class Evaluation:
    """The hits of the rules over one recording, and what it took."""

    folder: str
    hits: list[SigmaHit]
    events: int
    rules_run: int
    rules_skipped: int  # their log source is absent from the recording
    errors: dict[str, str]  # rule id: SQLite error (the rule is skipped)
    load_seconds: float
    query_seconds: float


class SigmaEngine:
    """Compiled rules and the evaluations already made: each recording is evaluated once.

    `on_evaluated` is told of each new evaluation (the command line prints a summary line).
    """

    def __init__(
        self,
        rules: Sequence[CompiledRule],
        on_evaluated: Callable[[Evaluation], None] | None = None,
    ) -> None:
        self.rules = list(rules)
        self.on_evaluated = on_evaluated
        self._done: dict[Path, Evaluation] = {}

    def hits(self, folder: Path) -> list[SigmaHit]:
        return self.evaluate(folder).hits

    def evaluate(self, folder: Path) -> Evaluation:
        key = folder.resolve()
        if key not in self._done:
            self._done[key] = evaluate(folder, self.rules)
            if self.on_evaluated:
                self.on_evaluated(self._done[key])
        return self._done[key]


def evaluate(folder: Path, rules: Sequence[CompiledRule]) -> Evaluation:
    """Load the recording into a fresh table, then run each rule whose log source it holds."""
    connection = sqlite3.connect("")  # "" is a private temporary on-disk database
    try:
        table = EventTable(connection)
        started = time.perf_counter()
        for path in recording_files(folder):
            for line, event in stream(path):
                table.add(path.name, line, columns_of(event))
        for path in zeek_files(folder):
            for line, row in zeek_stream(path):
                table.add(path.name, line, row, zeek=zeek_service(path))
        table.flush()
        table.index()
        loaded = time.perf_counter()
        planned = [(rule, scope) for rule in rules if (scope := table.scope(rule)) is not None]
        table.add_columns({name for rule, _ in planned for name in rule.fields})
        hits, errors = _run(connection, planned)
        return Evaluation(
            folder=folder.name,
            hits=hits,
            events=table.rows,
            rules_run=len(planned),
            rules_skipped=len(rules) - len(planned),
            errors=errors,
            load_seconds=loaded - started,
            query_seconds=time.perf_counter() - loaded,
        )
    finally:
        connection.close()


Scope = list[str]  # the source files a rule may match; empty: every file (the SQL says which)


def _run(
    connection: sqlite3.Connection, planned: list[tuple[CompiledRule, Scope]]
) -> tuple[list[SigmaHit], dict[str, str]]:
    connection.create_function("regexp", 2, _regexp, deterministic=True)
    # Rule text comes from outside: the queries may read the table and call functions, nothing
    # else (no ATTACH, no writes, no PRAGMA).
    connection.set_authorizer(_read_only)
    hits: list[SigmaHit] = []
    errors: dict[str, str] = {}
    for rule, scope in planned:
        within = f"_source IN ({', '.join('?' * len(scope))}) AND " if scope else ""
        query = f"SELECT _source, _line FROM events WHERE {within}({rule.where})"  # noqa: S608
        try:
            found = connection.execute(query, scope).fetchall()
        except sqlite3.Error as error:
            errors[rule.id] = str(error)
            continue
        rows: dict[str, list[int]] = defaultdict(list)
        for source, line in found:
            rows[source].append(line)
        hits.extend(_hit(rule, source, sorted(lines)) for source, lines in sorted(rows.items()))
    connection.set_authorizer(None)
    return sorted(hits, key=lambda h: (h.source, h.rule_id)), errors


def _hit(rule: CompiledRule, source: str, rows: list[int]) -> SigmaHit:
    return SigmaHit(
        source=source,
        rule_id=rule.id,
        title=rule.title,
        level=rule.level,
        tags=list(rule.tags),
        author=rule.author,
        rows=rows,
    )


@dataclass
class EventTable:
    """The `events` table, filled in batches; columns appear with the field names."""

    connection: sqlite3.Connection
    rows: int = 0
    columns: dict[str, str] = field(default_factory=dict)  # lower-case name: first spelling
    channels: set[str] = field(default_factory=set)  # lower-case Windows channels present
    zeek: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    audit: list[str] = field(default_factory=list)  # files of Linux audit records
    pending: list[tuple[str, int, dict[str, str]]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.connection.execute("PRAGMA journal_mode = OFF")
        self.connection.execute("PRAGMA synchronous = OFF")
        self.connection.execute("CREATE TABLE events (_source TEXT, _line INTEGER)")

    def add(self, source: str, line: int, fields: dict[str, str], zeek: str | None = None) -> None:
        if zeek is not None and source not in self.zeek[zeek]:
            self.zeek[zeek].append(source)
        if fields.get("event_source") == AUDIT_SOURCE and source not in self.audit:
            self.audit.append(source)
        channel = fields.get("Channel") or fields.get("channel")
        if channel is not None:
            self.channels.add(channel.lower())
        self.pending.append((source, line, fields))
        if len(self.pending) >= BATCH:
            self.flush()

    def flush(self) -> None:
        """Insert the pending rows, grouped by field set (one statement per group)."""
        groups: dict[tuple[str, ...], list[tuple[object, ...]]] = defaultdict(list)
        for source, line, fields in self.pending:
            groups[tuple(fields)].append((source, line, *fields.values()))
        self.add_columns({name for names in groups for name in names})
        for names, values in groups.items():
            columns = ", ".join(["_source", "_line", *(_quote(n) for n in names)])
            marks = ", ".join("?" * (len(names) + 2))
            insert = f"INSERT INTO events ({columns}) VALUES ({marks})"  # noqa: S608
            self.connection.executemany(insert, values)
        self.rows += len(self.pending)
        self.pending.clear()

    def add_columns(self, names: set[str]) -> None:
        for name in sorted(names):
            if name.lower() not in self.columns:
                self.columns[name.lower()] = name
                self.connection.execute(
                    f"ALTER TABLE events ADD COLUMN {_quote(name)} TEXT COLLATE NOCASE"
                )

    def index(self) -> None:
        """Most Windows rules start with `Channel=... AND EventID=...`: index both."""
        if {"channel", "eventid"} <= self.columns.keys():
            self.connection.execute("CREATE INDEX events_channel ON events (Channel, EventID)")

    def scope(self, rule: CompiledRule) -> Scope | None:
        """The files the rule may match, or None when the recording lacks its log source."""
        if rule.logsource.product == "zeek":
            files = self.zeek.get(rule.logsource.service or "")
            return list(files) if files else None
        if rule.logsource.product == "linux":
            return list(self.audit) if self.audit and runs_on_audit(rule.logsource) else None
        channels = windows_channels(rule.logsource)
        return [] if channels & self.channels else None


def runs_on_audit(source: LogSource) -> bool:
    """Linux rules the audit records answer: `service: auditd`, and `process_creation` (the
    EXECVE records carry the process fields). Syslog, file and network categories need logs
    the recordings do not have: not run."""
    if source.category is None:
        return source.service == AUDIT_SOURCE
    return source.category == "process_creation" and source.service in (None, AUDIT_SOURCE)


def windows_channels(source: LogSource) -> frozenset[str]:
    """The Windows channels (lower case) the pipelines map a log source to; empty: unmapped.

    Sysmon categories go to the Sysmon channel, PowerShell categories to their service's channel,
    services to theirs; a category neither pipeline knows (`file_access`, `antivirus`...) gets no
    `Channel` condition, so it would match any event: it is not run.
    """
    if source.product != "windows":
        return frozenset()
    category = source.category
    if category in sysmon_generic_logsource_eventid_mapping:
        service: str | None = "sysmon"
    elif category in windows_generic_category_channel_mapping:
        service = windows_generic_category_channel_mapping[category]["service"]
    elif category is None:
        service = source.service
    else:
        return frozenset()
    channel = windows_logsource_mapping.get(service or "")
    names = [channel] if isinstance(channel, str) else list(channel or [])
    return frozenset(n.lower() for n in names)


def columns_of(event: Mapping[str, object]) -> dict[str, str]:
    """A normalised event as column values: text, nested objects dotted, aliases filled."""
    fields: dict[str, str] = {}
    seen: set[str] = set()
    for name, value in _flatten(event):
        lower = name.lower()
        if lower not in seen and lower not in RESERVED and (text := _text(value)) is not None:
            seen.add(lower)
            fields[name] = text
    for column, sources in ALIASES.items():
        if column.lower() not in seen:
            alias = next((fields[s] for s in sources if s in fields), None)
            if alias is not None:
                fields[column] = alias
    return fields


def _flatten(value: Mapping[str, object], prefix: str = "") -> Iterator[tuple[str, object]]:
    for key, item in value.items():
        if isinstance(item, dict):
            yield from _flatten(item, f"{prefix}{key}.")  # type: ignore[arg-type]
        else:
            yield f"{prefix}{key}", item


def _text(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"  # the backend's boolean values
    if isinstance(value, str | int | float):
        return str(value)
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def recording_files(folder: Path) -> list[Path]:
    """The host and cloud event files, without macOS `._*` metadata files (not recordings)."""
    return [p for p in event_files(folder) if not p.name.startswith("._")]


def zeek_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob("network/*.log.xz") if not p.name.startswith("._"))


def zeek_service(path: Path) -> str:
    """`dns.log.xz` is the `dns` service of Sigma's `product: zeek` rules."""
    return path.name.split(".", 1)[0]


def zeek_stream(path: Path) -> Iterator[tuple[int, dict[str, str]]]:
    """(0-based line, fields) per record of a Zeek log, TSV (`#fields` header) or JSON lines.

    Unset fields (`-`) are absent; `(empty)` is the empty string.
    """
    names: list[str] = []
    with lzma.open(path, "rt", encoding="utf-8") as lines:
        for line, text in enumerate(lines):
            text = text.rstrip("\n")
            if text.startswith("#fields"):
                names = text.split("\t")[1:]
            elif text.startswith("{"):
                try:
                    record = json.loads(text)
                except json.JSONDecodeError:
                    continue
                if isinstance(record, dict):
                    yield line, columns_of(record)
            elif text and not text.startswith("#") and names:
                yield (
                    line,
                    {
                        name: "" if value == ZEEK_EMPTY else value
                        for name, value in zip(names, text.split("\t"), strict=False)
                        if value != ZEEK_UNSET and name.lower() not in RESERVED
                    },
                )


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@functools.lru_cache(maxsize=4096)
def _pattern(text: str) -> re.Pattern[str] | None:
    try:
        return re.compile(text)
    except re.error:
        return None  # a pattern Python cannot read matches nothing


def _regexp(pattern: str | None, value: str | None) -> bool:
    """SQLite's `value REGEXP pattern` (called as regexp(pattern, value)): a search."""
    if pattern is None or value is None:
        return False
    compiled = _pattern(pattern)
    return compiled is not None and compiled.search(value) is not None


_ALLOWED = {sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, sqlite3.SQLITE_FUNCTION}


def _read_only(action: int, *_: str | None) -> int:
    return sqlite3.SQLITE_OK if action in _ALLOWED else sqlite3.SQLITE_DENY
