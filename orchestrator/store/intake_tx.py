"""Ingestion's batch transaction on the store's side: `IntakeTx` reads the grouping state, stages
the batch's rows and, at the end, inserts them in bulk (`Intake.write` runs it all in one write
transaction, in a worker thread).

This is the hot path of `POST /api/alerts`, so its statements run on the driver's own cursor
(sqlite3 or psycopg) inside SQLAlchemy's transaction, with their SQL written once per dialect
(`IntakeSql`): SQLAlchemy's execution of a prebuilt statement (parameter processing, result
wrapping, events) cost more than SQLite took to run it, about 0.1 ms a statement and ten
statements a batch. Values are bound as the store's column types store them: timestamps in UTC,
on SQLite as SQLAlchemy's `DATETIME` text, on Postgres as `timestamptz`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import Enum
from functools import lru_cache
from typing import Any

from orchestrator.store import mapping
from orchestrator.store.columns import table_of
from orchestrator.store.records import IncidentRecord
from orchestrator.store.tables import IncidentRow
from tools.models import Alert, IncidentStatus

IN_CHUNK = 500  # bound on the parameters of one IN (...) query
_IN = "{IN}"  # where a query's list of values goes (a marker in the constant SQL below)
_INCIDENT_COLUMNS = tuple(table_of(IncidentRow).columns.keys())


@dataclass(frozen=True)
class StagedAlert:
    fingerprint: str
    incident_id: str
    alert: Alert
    source: str
    shape: str
    scope: str
    original: str
    received_at: datetime


@dataclass(frozen=True)
class GroupState:
    """Which incident a grouping key points to, when it last saw an alert, and when that incident
    closed (None while it is not closed: a closed incident still takes its group's late alerts,
    within the policy's `ingest.after_close`)."""

    incident_id: str
    last_seen: datetime
    closed_at: datetime | None


# Reads: `?` for each parameter, {IN} for the list of values (always the last parameters).
_STORED = "SELECT fingerprint, incident_id FROM alert_intake WHERE fingerprint {IN}"
_GROUPS_OF_KEYS = (
    'SELECT g."key", g.incident_id, g.last_seen, i.status, i.closed_at'
    " FROM incident_groups g JOIN incidents i ON i.id = g.incident_id"
    ' WHERE g.scope = ? AND g."key" {IN}'
)
_LATEST = (
    "SELECT incident_id, max(last_seen) FROM incident_groups"
    " WHERE scope = ? AND incident_id {IN} GROUP BY incident_id"
)
_RULE_HOSTS_SINCE = (
    "SELECT rule, host, last_seen FROM rule_hosts WHERE scope = ? AND last_seen >= ? AND rule {IN}"
)
_IDS_TAKEN = "SELECT id FROM incidents WHERE id {IN}"
_MARK_SIGNALLED = "UPDATE alert_intake SET signalled_at = ? WHERE fingerprint {IN}"
# Writes, one executemany each.
_ALERT_COLUMNS = ("uid", "fingerprint", "incident_id", "time", "title", "severity", "raw")
_INTAKE_COLUMNS = (
    "fingerprint",
    "incident_id",
    "alert_uid",
    "source",
    "shape",
    "scope",
    "original",
    "received_at",
    "signalled_at",
)


def _insert(table: str, columns: Sequence[str], conflict: str) -> str:
    names = ", ".join(f'"{name}"' for name in columns)
    marks = ", ".join("?" for _ in columns)
    # The store's own table and column names, never input.
    return f"INSERT INTO {table} ({names}) VALUES ({marks}) ON CONFLICT {conflict}"  # noqa: S608


_INSERT_INCIDENTS = _insert("incidents", _INCIDENT_COLUMNS, "DO NOTHING")
_INSERT_ALERTS = _insert("alerts", _ALERT_COLUMNS, "DO NOTHING")
_INSERT_INTAKE = _insert("alert_intake", _INTAKE_COLUMNS, "DO NOTHING")
_UPSERT_GROUPS = _insert(
    "incident_groups",
    ("scope", "key", "incident_id", "last_seen"),
    '(scope, "key") DO UPDATE SET incident_id = excluded.incident_id,'
    " last_seen = excluded.last_seen",
)
_UPSERT_RULE_HOSTS = _insert(
    "rule_hosts",
    ("scope", "rule", "host", "last_seen"),
    "(scope, rule, host) DO UPDATE SET last_seen = excluded.last_seen",
)


@dataclass(frozen=True)
class IntakeSql:
    """The transaction's SQL and value conversions in one dialect: SQLite (sqlite3, `?`
    parameters, an `IN (?, ...)` per list) or Postgres (psycopg, `%s`, `= ANY(%s)`)."""

    sqlite: bool

    def text(self, statement: str, count: int = 0) -> str:
        """`statement` in this dialect, its list (if any) of `count` values."""
        return _dialect_sql(statement, self.sqlite, count)

    def list_params(self, values: list[str]) -> list[Any]:
        return values if self.sqlite else [values]

    def at(self, value: datetime | None) -> Any:
        """A timestamp as the store's `UtcDateTime` column keeps it."""
        if value is None:
            return None
        utc = mapping.aware(value).astimezone(UTC)
        return utc.replace(tzinfo=None).isoformat(" ", "microseconds") if self.sqlite else utc

    def read_at(self, value: Any) -> datetime:
        if isinstance(value, str):  # SQLite's text
            return datetime.fromisoformat(value).replace(tzinfo=UTC)
        assert isinstance(value, datetime)
        return mapping.aware(value).astimezone(UTC)


@lru_cache(maxsize=2048)
def _dialect_sql(query: str, sqlite: bool, count: int) -> str:
    if sqlite:
        return query.replace(_IN, "IN (" + ", ".join("?" * count) + ")")
    return query.replace(_IN, "= ANY(?)").replace("?", "%s")


@dataclass
class IntakeTx:
    """Reads of the grouping state and staged writes, inside one write transaction, on the
    driver's cursor of the transaction's connection."""

    cursor: Any
    sql: IntakeSql
    _incidents: list[dict[str, Any]] = field(default_factory=list)
    _alerts: list[StagedAlert] = field(default_factory=list)
    _groups: dict[tuple[str, str], tuple[str, datetime]] = field(default_factory=dict)
    _rule_hosts: dict[tuple[str, str, str], datetime] = field(default_factory=dict)

    def _rows(self, query: str, values: Iterable[str], *params: Any) -> Iterable[Any]:
        """`query`'s rows for `values` (its list), in chunks of bounded size."""
        for chunk in chunks(sorted(set(values))):
            sql = self.sql.text(query, len(chunk))
            self.cursor.execute(sql, [*params, *self.sql.list_params(chunk)])
            yield from self.cursor.fetchall()

    def stored(self, fingerprints: Sequence[str]) -> dict[str, str]:
        """Fingerprint -> incident id of the alerts already stored."""
        return {fp: incident for fp, incident in self._rows(_STORED, fingerprints)}

    def groups(self, scope: str, keys: Iterable[str]) -> dict[str, GroupState]:
        """Key -> the incident it points to, closed or not (ingestion decides what a closed
        incident still takes).

        `last_seen` is the incident's latest alert over all its keys, not the key's own: a host
        whose later alerts were linked through a person (the process's events that name no user,
        after the person's lateral move) is still the open incident's host, as in the corpus's
        grouping rule, where the window is measured from the group's latest record."""
        found: dict[str, GroupState] = {}
        for key, incident_id, last_seen, status, closed_at in self._rows(
            _GROUPS_OF_KEYS, keys, scope
        ):
            seen = self.sql.read_at(last_seen)
            closed = None
            if status == IncidentStatus.CLOSED.value:
                closed = self.sql.read_at(closed_at) if closed_at is not None else seen
            found[key] = GroupState(incident_id, seen, closed)
        latest = self._latest(scope, {state.incident_id for state in found.values()})
        return {
            key: GroupState(
                s.incident_id, max(s.last_seen, latest.get(s.incident_id, s.last_seen)), s.closed_at
            )
            for key, s in found.items()
        }

    def _latest(self, scope: str, incidents: Iterable[str]) -> dict[str, datetime]:
        """Incident id -> the latest `last_seen` of any of its keys in the scope."""
        return {
            incident_id: self.sql.read_at(seen)
            for incident_id, seen in self._rows(_LATEST, incidents, scope)
            if seen is not None
        }

    def rule_hosts(
        self, scope: str, rules: Iterable[str], since: datetime
    ) -> dict[str, dict[str, datetime]]:
        """Rule -> {host: last seen} for hosts seen at `since` or later."""
        found: dict[str, dict[str, datetime]] = {}
        for rule, host, last_seen in self._rows(
            _RULE_HOSTS_SINCE, rules, scope, self.sql.at(since)
        ):
            found.setdefault(rule, {})[host] = self.sql.read_at(last_seen)
        return found

    def incident_ids_taken(self, ids: Sequence[str]) -> set[str]:
        return {incident_id for (incident_id,) in self._rows(_IDS_TAKEN, ids)}

    def mark_signalled(self, fingerprints: Sequence[str], at: datetime) -> None:
        """The dispatcher's write: these alerts reached their workflows."""
        for chunk in chunks(fingerprints):
            sql = self.sql.text(_MARK_SIGNALLED, len(chunk))
            self.cursor.execute(sql, [self.sql.at(at), *self.sql.list_params(chunk)])

    def add_incident(self, record: IncidentRecord) -> None:
        self._incidents.append(mapping.incident_values(record))

    def add_alert(self, staged: StagedAlert) -> None:
        self._alerts.append(staged)

    def put_group(self, scope: str, key: str, incident_id: str, last_seen: datetime) -> None:
        self._groups[(scope, key)] = (incident_id, last_seen)

    def put_rule_host(self, scope: str, rule: str, host: str, seen: datetime) -> None:
        current = self._rule_hosts.get((scope, rule, host))
        if current is None or seen > current:
            self._rule_hosts[(scope, rule, host)] = seen

    def flush(self) -> None:
        sql, at = self.sql, self.sql.at
        if self._incidents:
            rows = [self._row(values, _INCIDENT_COLUMNS) for values in self._incidents]
            self.cursor.executemany(sql.text(_INSERT_INCIDENTS), rows)
        if self._alerts:
            values = mapping.alert_values
            alert_rows = [
                self._row(values(s.alert, s.incident_id, s.fingerprint), _ALERT_COLUMNS)
                for s in self._alerts
            ]
            intake_rows = [
                (
                    s.fingerprint,
                    s.incident_id,
                    s.alert.uid,
                    s.source,
                    s.shape,
                    s.scope,
                    s.original,
                    at(s.received_at),
                    None,
                )
                for s in self._alerts
            ]
            self.cursor.executemany(sql.text(_INSERT_ALERTS), alert_rows)
            self.cursor.executemany(sql.text(_INSERT_INTAKE), intake_rows)
        if self._groups:
            rows = [(s, k, i, at(seen)) for (s, k), (i, seen) in self._groups.items()]
            self.cursor.executemany(sql.text(_UPSERT_GROUPS), rows)
        if self._rule_hosts:
            rows = [(s, r, h, at(seen)) for (s, r, h), seen in self._rule_hosts.items()]
            self.cursor.executemany(sql.text(_UPSERT_RULE_HOSTS), rows)

    def _row(self, values: dict[str, Any], columns: Sequence[str]) -> tuple[Any, ...]:
        """A row of the store's mapping (`mapping.*_values`) as the statement's parameters."""
        return tuple(self._value(values.get(column)) for column in columns)

    def _value(self, value: Any) -> Any:
        if isinstance(value, Enum):
            return value.value
        if isinstance(value, datetime):
            return self.sql.at(value)
        return value


def chunks(values: Sequence[str]) -> Iterable[list[str]]:
    items = list(values)
    for start in range(0, len(items), IN_CHUNK):
        yield items[start : start + IN_CHUNK]
