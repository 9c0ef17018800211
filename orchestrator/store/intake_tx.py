"""Ingestion's batch transaction on the store's side: `IntakeTx` reads the grouping state, stages
the batch's rows and, at the end, inserts them in bulk with the statements of `BatchWrites`
(`Intake.write` runs it all in one write transaction, in a worker thread).

Every statement is built once, at import or once per engine: on this hot path, building a
statement cost more than running it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, func
from sqlalchemy import select as core_select
from sqlmodel import SQLModel

from orchestrator.store import mapping
from orchestrator.store.records import IncidentRecord
from orchestrator.store.tables import (
    AlertRow,
    IncidentGroupRow,
    IncidentRow,
    IntakeRow,
    RuleHostRow,
    table_of,
)
from tools.models import Alert, IncidentStatus

IN_CHUNK = 500  # bound on the parameters of one IN (...) query
_INTAKE = table_of(IntakeRow)


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


_GROUPS = table_of(IncidentGroupRow)
_INCIDENTS = table_of(IncidentRow)
_RULE_HOSTS = table_of(RuleHostRow)
_STORED = core_select(_INTAKE.c.fingerprint, _INTAKE.c.incident_id).where(
    _INTAKE.c.fingerprint.in_(bindparam("values", expanding=True))
)
_GROUPS_OF_KEYS = (
    core_select(
        _GROUPS.c.key,
        _GROUPS.c.incident_id,
        _GROUPS.c.last_seen,
        _INCIDENTS.c.status,
        _INCIDENTS.c.closed_at,
    )
    .join(_INCIDENTS, _INCIDENTS.c.id == _GROUPS.c.incident_id)
    .where(_GROUPS.c.scope == bindparam("scope"))
    .where(_GROUPS.c.key.in_(bindparam("values", expanding=True)))
)
_LATEST = (
    core_select(_GROUPS.c.incident_id, func.max(_GROUPS.c.last_seen))
    .where(_GROUPS.c.scope == bindparam("scope"))
    .where(_GROUPS.c.incident_id.in_(bindparam("values", expanding=True)))
    .group_by(_GROUPS.c.incident_id)
)
_RULE_HOSTS_SINCE = (
    core_select(_RULE_HOSTS.c.rule, _RULE_HOSTS.c.host, _RULE_HOSTS.c.last_seen)
    .where(_RULE_HOSTS.c.scope == bindparam("scope"))
    .where(_RULE_HOSTS.c.rule.in_(bindparam("values", expanding=True)))
    .where(_RULE_HOSTS.c.last_seen >= bindparam("since"))
)
_IDS_TAKEN = core_select(_INCIDENTS.c.id).where(
    _INCIDENTS.c.id.in_(bindparam("values", expanding=True))
)


@dataclass(frozen=True)
class BatchWrites:
    """The transaction's inserts in one dialect, built once per engine."""

    incidents: Any
    alerts: Any
    intake: Any
    groups: Any
    rule_hosts: Any

    @classmethod
    def of(cls, insert: Callable[[type[SQLModel]], Any]) -> BatchWrites:
        groups = insert(IncidentGroupRow)
        rule_hosts = insert(RuleHostRow)
        return cls(
            incidents=insert(IncidentRow).on_conflict_do_nothing(),
            alerts=insert(AlertRow).on_conflict_do_nothing(),
            intake=insert(IntakeRow).on_conflict_do_nothing(),
            groups=groups.on_conflict_do_update(
                index_elements=["scope", "key"],
                set_={
                    "incident_id": groups.excluded.incident_id,
                    "last_seen": groups.excluded.last_seen,
                },
            ),
            rule_hosts=rule_hosts.on_conflict_do_update(
                index_elements=["scope", "rule", "host"],
                set_={"last_seen": rule_hosts.excluded.last_seen},
            ),
        )


@dataclass
class IntakeTx:
    """Reads of the grouping state and staged writes, inside one write transaction."""

    connection: Connection
    _incidents: list[dict[str, Any]] = field(default_factory=list)
    _alerts: list[StagedAlert] = field(default_factory=list)
    _groups: dict[tuple[str, str], tuple[str, datetime]] = field(default_factory=dict)
    _rule_hosts: dict[tuple[str, str, str], datetime] = field(default_factory=dict)

    def _rows(self, query: Any, values: Iterable[str], **params: Any) -> Iterable[Any]:
        """`query`'s rows for `values` (its expanding `IN`), in chunks of bounded size."""
        for chunk in chunks(sorted(set(values))):
            yield from self.connection.execute(query, {"values": chunk, **params})

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
            _GROUPS_OF_KEYS, keys, scope=scope
        ):
            seen = mapping.aware(last_seen)
            closed = None
            if status == IncidentStatus.CLOSED.value:
                closed = mapping.aware(closed_at) if closed_at is not None else seen
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
            incident_id: mapping.aware(seen)
            for incident_id, seen in self._rows(_LATEST, incidents, scope=scope)
            if seen is not None
        }

    def rule_hosts(
        self, scope: str, rules: Iterable[str], since: datetime
    ) -> dict[str, dict[str, datetime]]:
        """Rule -> {host: last seen} for hosts seen at `since` or later."""
        found: dict[str, dict[str, datetime]] = {}
        for rule, host, last_seen in self._rows(_RULE_HOSTS_SINCE, rules, scope=scope, since=since):
            found.setdefault(rule, {})[host] = mapping.aware(last_seen)
        return found

    def incident_ids_taken(self, ids: Sequence[str]) -> set[str]:
        return {incident_id for (incident_id,) in self._rows(_IDS_TAKEN, ids)}

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

    def flush(self, writes: BatchWrites) -> None:
        if self._incidents:
            self.connection.execute(writes.incidents, self._incidents)
        if self._alerts:
            alert_rows = [
                mapping.alert_values(s.alert, s.incident_id, s.fingerprint) for s in self._alerts
            ]
            intake_rows = [
                {
                    "fingerprint": s.fingerprint,
                    "incident_id": s.incident_id,
                    "alert_uid": s.alert.uid,
                    "source": s.source,
                    "shape": s.shape,
                    "scope": s.scope,
                    "original": s.original,
                    "received_at": s.received_at,
                    "signalled_at": None,
                }
                for s in self._alerts
            ]
            self.connection.execute(writes.alerts, alert_rows)
            self.connection.execute(writes.intake, intake_rows)
        if self._groups:
            rows = [
                {"scope": s, "key": k, "incident_id": i, "last_seen": seen}
                for (s, k), (i, seen) in self._groups.items()
            ]
            self.connection.execute(writes.groups, rows)
        if self._rule_hosts:
            rows = [
                {"scope": s, "rule": r, "host": h, "last_seen": seen}
                for (s, r, h), seen in self._rule_hosts.items()
            ]
            self.connection.execute(writes.rule_hosts, rows)


def chunks(values: Sequence[str]) -> Iterable[list[str]]:
    items = list(values)
    for start in range(0, len(items), IN_CHUNK):
        yield items[start : start + IN_CHUNK]
